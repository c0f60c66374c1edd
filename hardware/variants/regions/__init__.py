"""Regions: several kernel calls compiled as one function (fused), or a whole loop.

`spec` says what a region computes, free of IR; the builders (`jax_region`,
`halide_region`) compile a spec; `catalogue` names the region variants and
their features for the models.
"""
