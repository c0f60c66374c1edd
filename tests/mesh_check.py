"""Run by `tests/test_sharding.py` in a process of its own with 8 simulated CPU devices
(`JAX_NUM_CPU_DEVICES=8`, set before JAX starts): every example, small, with every
region that can be split running as `jax.sharded`, against the same program with
every region run op by op; the matrix examples again with every region that splits
over a 4 × 2 grid running as `jax.sharded.grid`; the shardings of heat's loop and of
the Markov chain's loop on the grid as JAX reports them; and heat's values kept on the
mesh between its two sharded regions (the loop and the energy), its field input made
by rows. Prints one JSON object."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from xdsl.dialects.builtin import StringAttr

from annc.compiler import compile_program, read_source
from annc.dsl.dialect import RegionOp
from annc.hardware.devices.mesh import mesh_info
from annc.hardware.execution.rundata import input_specs
from annc.hardware.execution.shard_inputs import RowSource, drawn_by_rows
from annc.hardware.variants.regions.from_ir import lower_region
from annc.hardware.variants.regions.sharded_region import (
    ShardedValue,
    build_sharded,
    resharded,
)
from annc.passes.sharding_choice import force_sharded
from annc.running import run_module

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SMALL = {
    "heat": {"N": 256, "STEPS": 20}, "wave": {"N": 256, "STEPS": 20},
    "poisson": {"N": 256, "SWEEPS": 20}, "conjugate_gradients": {"N": 256, "ITERATIONS": 10},
    "power_iteration": {"N": 256, "ITERATIONS": 10}, "markov_chain": {"M": 256, "SQUARINGS": 4},
    "gram_matrix": {"S": 256, "P": 512}, "detector_smoothing": {"N": 256, "P": 9, "PASSES": 2},
}
MATRICES = ("markov_chain", "gram_matrix", "conjugate_gradients", "power_iteration")


def _selected(name: str, params: dict[str, int]):
    path = EXAMPLES / f"{name}.ann"
    return compile_program(read_source(path), str(path), params, ("cpu",), "selected",
                           "never", record=False).ir


def _op_by_op(module) -> None:
    for region in module.walk():
        if isinstance(region, RegionOp):
            region.variant = StringAttr("ops")
            region.start_variant = None


def _against_op_by_op(name: str, grid: bool) -> dict:
    params = SMALL[name]
    sharded, plain = _selected(name, params), _selected(name, params)
    forced = force_sharded(sharded, grid)
    _op_by_op(plain)
    got = run_module(sharded, None, seed=0, builds="first")
    want = run_module(plain, None, seed=0, builds="first").outputs
    errors = {}
    for key, value in want.items():
        scale = max(float(np.max(np.abs(value))), 1e-30)
        errors[key] = float(np.max(np.abs(got.outputs[key] - value))) / scale
    ran = [r["variant"] for r in got.report["regions"]]
    return {"forced": forced, "ran": ran, "errors": errors,
            "dtype": str(next(iter(want.values())).dtype)}


def main() -> int:
    mesh = mesh_info()
    report: dict = {"mesh": None if mesh is None else mesh.describe(), "examples": {},
                    "grid": {}}
    for name in SMALL:
        report["examples"][name] = _against_op_by_op(name, grid=False)
    for name in MATRICES:
        report["grid"][name] = _against_op_by_op(name, grid=True)
    heat = _selected("heat", SMALL["heat"])
    loop = next(r for r in heat.walk() if isinstance(r, RegionOp))
    spec = lower_region(loop).spec
    region = build_sharded(spec)
    inputs = [np.full(shape, 0.5, np.float32) for shape in spec.inputs]
    for number, values in spec.constants:
        inputs[number] = np.array(values, np.float32).reshape(spec.inputs[number])
    outputs = region.arrays(*inputs, trips=2)
    report["heat_loop"] = {
        "inputs": [str(s.spec) for s in region.in_shardings],
        "outputs": [str(a.sharding.spec) for a in outputs],
        "output_devices": [len(a.sharding.device_set) for a in outputs],
        "shard_shapes": [list(a.addressable_shards[0].data.shape) for a in outputs],
    }
    markov = _selected("markov_chain", SMALL["markov_chain"])
    loop = next(r for r in markov.walk() if isinstance(r, RegionOp))
    spec = lower_region(loop).spec
    region = build_sharded(spec, grid=True)
    outputs = region.arrays(np.full(spec.inputs[0], 0.5), trips=1)
    report["markov_loop"] = {
        "mesh": dict(region.mesh.shape),
        "inputs": [str(s.spec) for s in region.in_shardings],
        "outputs": [str(a.sharding.spec) for a in outputs],
        "shard_shapes": [list(a.addressable_shards[0].data.shape) for a in outputs],
    }
    report["kept"] = _kept()
    print(json.dumps(report))
    return 0


def _relative(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.max(np.abs(got - want))) / max(float(np.max(np.abs(want))), 1e-30)


def _kept() -> dict:
    """Heat with both regions sharded, its field drawn by rows, its outputs not
    gathered: what stayed on the mesh, which rows were drawn, and the values against
    the whole run's."""
    module = _selected("heat", SMALL["heat"])
    force_sharded(module)
    by_rows = drawn_by_rows(input_specs(module), 0)
    field = by_rows.arrays[0]
    assert isinstance(field, RowSource)
    asked: list[list[int]] = []

    def read(start: int, stop: int) -> np.ndarray:
        asked.append([start, stop])
        return field.read(start, stop)

    by_rows.arrays[0] = RowSource(field.shape, field.dtype, read)
    kept = run_module(module, by_rows=by_rows, builds="first", gather=False)
    whole = run_module(_selected("heat", SMALL["heat"]), None, seed=0, builds="first")
    on_mesh = {name: value.array for name, value in kept.on_mesh.items()
               if isinstance(value, ShardedValue)}
    field_out = kept.on_mesh["T"]
    assert isinstance(field_out, ShardedValue)
    replicated = build_sharded(lower_region(next(
        r for r in module.walk() if isinstance(r, RegionOp))).spec).whole
    whole_again = resharded(field_out.array, replicated)
    return {
        "gathered": sorted(kept.outputs),
        "on_mesh": {name: str(a.sharding.spec) for name, a in on_mesh.items()},
        "shard_shapes": {name: list(a.addressable_shards[0].data.shape)
                         for name, a in on_mesh.items()},
        "rows_drawn": sorted(asked),
        "errors": {name: _relative(np.asarray(value.whole()), whole.outputs[name])
                   for name, value in kept.on_mesh.items()},
        "resplit": {"spec": str(whole_again.sharding.spec),
                    "equal": bool(np.array_equal(np.asarray(whole_again),
                                                 field_out.whole()))},
    }


if __name__ == "__main__":
    sys.exit(main())
