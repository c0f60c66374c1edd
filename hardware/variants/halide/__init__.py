"""Halide's variants: the algorithms (`algorithms`), written once, apart from their named
schedules (`schedules`) and auto-schedulers, the pipeline they make (`pipeline`), ahead-of-
time compilation (`aot`), its build cache (`build_cache`) and the ABI of the compiled
functions (`abi`), and the registrations on the CPU (`cpu`) and OpenCL (`opencl`).

Importing this package imports no Halide; its modules that need Halide do."""
