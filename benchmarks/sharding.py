"""Sharded regions over 8 simulated CPU devices: correctness, communication, selection.

    python benchmarks/sharding.py [--devices 8] [--repeats 5] [--out PATH]

Runs itself with `JAX_NUM_CPU_DEVICES=8` (JAX fixes its device count when it starts)
and measures, on the workloads of `benchmarks/regions.py` at their realistic sizes:

1. correctness: every example with every region that can be split running as
   `jax.sharded` (`--shard-regions`' rewrite) against the same program run op by op,
   the largest error relative to an output's largest value;
2. communication per execution (one trip of a loop): the bytes of every collective
   `sharding.layout` predicts, against the collectives in the compiled region's HLO
   as XLA partitioned it (in the loop's body for a loop);
   and again for the matrix workloads on the devices as a 4 × 2 grid
   (`jax.sharded.grid`), with both layouts' predicted communication and which one
   selection picks (this machine's communication model, and the assumed `NETWORKS`);
3. selection with a mesh against without: the median time of `compile_program` to
   the selected IR (`--repeats` times, after one warm-up) in this process (8 devices)
   and in a child process of one device;
4. the predicted scaling of heat (16384² f32), conjugate gradients (51,200² f64, 21 GB)
   and the Markov chain's squarings (16,384² f64, 2 GB), with the layout picked:
   one trip's time against the number of devices, each device a host like this one
   (the one-device `jax` region model at the shard's shape) joined by an assumed
   interconnect (`NETWORKS`), as `passes.sharding_choice` predicts it.

The simulated devices share this machine's cores: the run times it records show
correctness and the cost of the collectives' machinery, not a speed-up. Writes
`benchmarks/results/sharding.md` and `.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]

EXAMPLES = ROOT / "examples"
REALISTIC = {
    "heat": {"N": 1024, "STEPS": 200}, "wave": {"N": 1024, "STEPS": 200},
    "poisson": {"N": 1024, "SWEEPS": 100},
    "conjugate_gradients": {"N": 2000, "ITERATIONS": 100},
    "power_iteration": {"N": 2000, "ITERATIONS": 100},
    "detector_smoothing": {"N": 2048, "P": 15, "PASSES": 3},
    "gram_matrix": {"S": 4000, "P": 500}, "markov_chain": {"M": 1000, "SQUARINGS": 6},
}
"""`benchmarks/regions.py`'s six workloads at its sizes, and poisson and the Markov chain."""
MATRICES = ("conjugate_gradients", "power_iteration", "gram_matrix", "markov_chain")
"""The workloads whose regions have matrix products: the ones a grid may split."""

SCALING = {"heat": {"N": 16384, "STEPS": 100},
           "conjugate_gradients": {"N": 51200, "ITERATIONS": 100},
           "markov_chain": {"M": 16384, "SQUARINGS": 10}}
DEVICE_COUNTS = (1, 2, 4, 8, 16, 32, 64)
NETWORKS = {"InfiniBand HDR (5 µs, 25 GB/s)": (5e-6, 1 / 25e9),
            "10 GbE (50 µs, 1.25 GB/s)": (50e-6, 1 / 1.25e9)}
"""Assumed interconnects for the predicted scaling: latency and seconds per byte of
every collective (vendor figures, not measured here)."""


def _inputs(name: str, params: dict[str, int]) -> dict[str, Any]:
    """Inputs that keep the physics finite: an SPD matrix for CG, a symmetric one for
    power iteration, a normalised kernel for smoothing, a stable coefficient for heat;
    the rest uniform in [0, 1) from the seed."""
    import numpy as np

    rng = np.random.default_rng(20261208)
    if name == "conjugate_gradients":
        n = params["N"]
        b = rng.standard_normal((n, n)) / np.sqrt(n)
        return {"K": b @ b.T + np.eye(n), "f": rng.standard_normal(n)}
    if name == "power_iteration":
        n = params["N"]
        h = rng.standard_normal((n, n))
        return {"H": (h + h.T) / 2, "v": np.ones(n)}
    if name == "detector_smoothing":
        p = params["P"]
        w = np.ones((p, p), np.float32)
        return {"image": rng.poisson(5.0, (params["N"],) * 2).astype(np.float32),
                "W": w / w.sum()}
    if name == "heat":
        return {"T": rng.random((params["N"],) * 2).astype(np.float32),
                "alpha": np.float32(0.2)}
    if name == "markov_chain":
        t = rng.random((params["M"],) * 2)
        return {"T": t / t.sum(axis=0), "p0": np.full(params["M"], 1 / params["M"])}
    return {}


def _selected(name: str, params: dict[str, int]):
    from annc.compiler import compile_program, read_source

    path = EXAMPLES / f"{name}.ann"
    return compile_program(read_source(path), str(path), params, ("cpu",), "selected",
                           "never", record=False)


def _op_by_op(module) -> None:
    from xdsl.dialects.builtin import StringAttr

    from annc.dsl.dialect import RegionOp

    for region in module.walk():
        if isinstance(region, RegionOp):
            region.variant = StringAttr("ops")
            region.start_variant = None


def correctness_and_communication(name: str, params: dict[str, int],
                                  grid: bool = False) -> dict[str, Any]:
    import numpy as np

    from annc.dsl.dialect import RegionOp
    from annc.hardware.variants.regions import catalogue
    from annc.hardware.variants.regions.from_ir import lower_region
    from annc.hardware.variants.regions.grid import grid_layout
    from annc.hardware.variants.regions.sharded_region import hlo_collectives
    from annc.hardware.variants.regions.sharding import layout
    from annc.passes.sharding_choice import force_sharded
    from annc.running import run_module

    sharded, plain = _selected(name, params).ir, _selected(name, params).ir
    forced = force_sharded(sharded, grid)
    _op_by_op(plain)
    inputs = _inputs(name, params)
    got = run_module(sharded, inputs, seed=0, builds="first", generate_missing=True)
    want = run_module(plain, inputs, seed=0, builds="first", generate_missing=True)
    errors = {}
    for key, value in want.outputs.items():
        scale = max(float(np.max(np.abs(value))), 1e-300)
        errors[key] = float(np.max(np.abs(got.outputs[key].astype(np.float64) - value))) / scale
    regions = []
    for op in sharded.walk():
        if not isinstance(op, RegionOp) or op.variant is None or not catalogue.is_sharded(
                op.variant.data):
            continue
        spec = lower_region(op).spec
        on_grid = op.variant.data == catalogue.SHARDED_GRID
        split = (grid_layout if on_grid else layout)(spec, 8)
        assert not isinstance(split, str)
        function = catalogue.built(spec, op.variant.data)
        region = getattr(function, "func", function)
        found = hlo_collectives(region.compiled.as_text())
        per_trip = [(kind, size) for kind, size, inside in found if inside or not spec.is_loop]
        regions.append({
            "kind": catalogue.kind(spec), "loop": spec.is_loop, "variant": op.variant.data,
            "model": {k: list(v) for k, v in split.by_kind().items()},
            "model_bytes": split.bytes,
            "hlo": per_trip, "hlo_bytes": sum(size for _, size in per_trip),
            "hlo_outside_loop": [(k, s) for k, s, inside in found
                                 if spec.is_loop and not inside]})
    return {"forced": forced, "errors": errors,
            "dtype": str(next(iter(want.outputs.values())).dtype),
            "sharded_execute_s": got.report["execute_s"],
            "op_by_op_execute_s": want.report["execute_s"], "regions": regions}


def layouts_compared() -> dict[str, Any]:
    """Every matrix workload's regions that split both ways over 8 devices: each
    layout's bytes and predicted communication a trip, and the one selection picks, by
    this machine's communication model for 8 CPU devices and by the `NETWORKS`."""
    from annc.dsl.dialect import RegionOp
    from annc.hardware.calibration.communication import CommunicationModel, communication_model
    from annc.hardware.devices.fingerprint import fingerprint
    from annc.hardware.devices.home import default_database
    from annc.hardware.devices.mesh import MeshInfo
    from annc.hardware.variants.regions import catalogue
    from annc.hardware.variants.regions.from_ir import lower_region
    from annc.hardware.variants.regions.grid import grid_layout
    from annc.hardware.variants.regions.sharding import layout

    here = communication_model(default_database(), fingerprint().id, MeshInfo("cpu", 8, 1))
    models = {("this machine, calibrated" if here.calibrated else
               "uncalibrated guess (20 µs, 2 GB/s)"): here}
    models.update({name: CommunicationModel({k: line for k in here.lines}, True)
                   for name, line in NETWORKS.items()})
    table: dict[str, Any] = {}
    for name in MATRICES:
        for op in _selected(name, REALISTIC[name]).ir.walk():
            if not isinstance(op, RegionOp):
                continue
            spec = lower_region(op).spec
            rows, grid = layout(spec, 8), grid_layout(spec, 8)
            if isinstance(rows, str) or isinstance(grid, str):
                continue
            key = f"{name}: {catalogue.kind(spec)}"
            table[key] = {"rows_bytes": rows.bytes, "grid_bytes": grid.bytes,
                          "collectives": [len(rows.collectives), len(grid.collectives)],
                          "models": {model: [comm.seconds(rows.collectives),
                                             comm.seconds(grid.collectives)]
                                     for model, comm in models.items()}}
    return table


def selection_seconds(repeats: int) -> dict[str, float]:
    """Median seconds of selection (compile to the selected IR) of every workload."""
    times = {}
    for name, params in REALISTIC.items():
        _selected(name, params)
        runs = []
        for _ in range(repeats):
            start = time.perf_counter()
            _selected(name, params)
            runs.append(time.perf_counter() - start)
        times[name] = statistics.median(runs)
    return times


def predicted_scaling() -> dict[str, Any]:
    """One trip of each scaling workload's loop against the devices, per interconnect."""
    from annc.dsl.dialect import RegionOp
    from annc.dsl.records import Combination
    from annc.hardware.calibration.communication import CommunicationModel
    from annc.hardware.devices.mesh import MeshInfo
    from annc.hardware.variants.regions import catalogue
    from annc.hardware.variants.regions.from_ir import lower_region
    from annc.hardware.variants.regions.spec import summary
    from annc.passes.models import load_models
    from annc.passes.sharding_choice import offer_sharded, price_sharded

    models = load_models()
    table: dict[str, Any] = {}
    for name, params in SCALING.items():
        module = _selected(name, params).ir
        loop = next(op for op in module.walk() if isinstance(op, RegionOp)
                    and lower_region(op).spec.is_loop)
        spec = lower_region(loop).spec
        kind = catalogue.kind(spec)
        alone = models.predict([(Combination(kind, "jax", "cpu"),
                                 summary(spec).query(kind, spec.dtype))])[0]
        rows = {}
        for network, line in NETWORKS.items():
            comm = CommunicationModel(
                {k: line for k in ("all-reduce", "all-gather", "collective-permute",
                                   "all-to-all")}, True)
            row = {}
            for devices in DEVICE_COUNTS:
                if devices == 1:
                    row[devices] = {"compute_s": alone.seconds, "communication_s": 0.0,
                                    "bytes": 0}
                    continue
                mesh = MeshInfo("cpu", devices, devices, devices)  # one device per host
                offer = offer_sharded(kind, spec, {"cpu"}, mesh)
                if offer.candidate.why_not:
                    row[devices] = {"why_not": offer.candidate.why_not}
                    continue
                assert offer.configuration is not None  # it can run: it was asked
                p = models.predict([(Combination(kind, "jax", "cpu"), offer.configuration)])[0]
                price_sharded(offer, 1, p, models, mesh, models.machine, comm)
                row[devices] = {"compute_s": offer.candidate.compute_s,
                                "communication_s": offer.candidate.communication_s,
                                "bytes": offer.split.bytes, "layout": offer.split.describe()}
            rows[network] = row
        table[name] = {"params": params, "kind": kind, "rows": rows}
    return table


def _child_selection(repeats: int) -> dict[str, float]:
    env = {**os.environ, "JAX_NUM_CPU_DEVICES": "1"}
    done = subprocess.run([sys.executable, __file__, "--selection-only",
                           "--repeats", str(repeats)], capture_output=True, text=True,
                          env=env, check=True)
    return json.loads(done.stdout)


def _region_rows(results: dict, with_variant: bool) -> list[str]:
    """A table row per region of each workload: its errors (first row only), kind,
    variant (where asked), predicted collectives and bytes, and XLA's bytes."""
    rows = []
    for name, result in results.items():
        errors = ", ".join(f"{k} {v:.1e}" for k, v in result["errors"].items())
        for i, region in enumerate(result["regions"] or [{}]):
            model = ", ".join(f"{count}× {kind}" for kind, (count, _) in
                              region.get("model", {}).items()) or "none"
            variant = f" {region.get('variant', '-')} |" if with_variant else ""
            rows.append(f"| {name if i == 0 else ''} | {errors if i == 0 else ''} | "
                        f"{region.get('kind', '-')} |{variant} {model} | "
                        f"{region.get('model_bytes', 0):,} | {region.get('hlo_bytes', 0):,} |")
    return rows


def _format(data: dict[str, Any]) -> list[str]:
    from harness import heading

    lines = heading("Sharded regions over 8 simulated CPU devices", data["stamp"])
    lines += ["", "The 8 devices are simulated (`JAX_NUM_CPU_DEVICES=8`) and share this "
              "machine's 2 cores: these figures show correctness and communication "
              "volume, not a speed-up.", "",
              "## Correctness and communication per execution (a loop: per trip)", "",
              "| workload | outputs: largest relative error, sharded vs op by op | region "
              "| predicted collectives | predicted bytes | XLA's HLO bytes |",
              "|---|---|---|---|---:|---:|"]
    lines += _region_rows(data["examples"], with_variant=False)
    lines += ["", "## The matrix workloads on a 4 × 2 grid (`jax.sharded.grid`)", "",
              "| workload | outputs: largest relative error, grid vs op by op | region "
              "| variant | predicted collectives | predicted bytes | XLA's HLO bytes |",
              "|---|---|---|---|---|---:|---:|"]
    lines += _region_rows(data["grid"], with_variant=True)
    lines += ["", "## By rows or as a grid: predicted communication a trip, 8 devices", "",
              "| region | communication model | by rows | as a 4×2 grid | picked |",
              "|---|---|---:|---:|---|"]
    for region, entry in data["layouts"].items():
        (rows_n, grid_n), first = entry["collectives"], True
        for model, (rows_s, grid_s) in entry["models"].items():
            label = (f"{region} ({entry['rows_bytes']:,} B in {rows_n} collectives by rows, "
                     f"{entry['grid_bytes']:,} B in {grid_n} on the grid)" if first else "")
            lines.append(f"| {label} | {model} | {rows_s * 1e3:.3g} ms | {grid_s * 1e3:.3g} ms "
                         f"| {'grid' if grid_s < rows_s else 'rows'} |")
            first = False
    lines += ["", "## Selection with and without a mesh (median seconds to the selected IR)",
              "", "| workload | 1 device | 8 devices | ratio |", "|---|---:|---:|---:|"]
    for name, alone in data["selection"]["one_device"].items():
        mesh = data["selection"]["mesh"][name]
        lines.append(f"| {name} | {alone:.3f} | {mesh:.3f} | {mesh / alone:.2f} |")
    lines += ["", "## Predicted scaling: one trip against the devices", "",
              "Each device a host like this one (the `jax` region model at one device's "
              "share), joined by the interconnect named; predicted, not measured.", ""]
    for name, entry in data["scaling"].items():
        params = ", ".join(f"{k}={v}" for k, v in entry["params"].items())
        for network, row in entry["rows"].items():
            lines += [f"**{name}** ({params}, {entry['kind']}), {network}:", "",
                      "| devices | layout | compute | communication | bytes a trip | total "
                      "| speed-up |", "|---:|---|---:|---:|---:|---:|---:|"]
            base = row["1"]["compute_s"] if "1" in row else row[1]["compute_s"]
            for devices, cell in row.items():
                if "why_not" in cell:
                    lines.append(f"| {devices} | {cell['why_not']} | | | | | |")
                    continue
                total = cell["compute_s"] + cell["communication_s"]
                lines.append(f"| {devices} | {cell.get('layout', 'one device')} | "
                             f"{cell['compute_s'] * 1e3:.3g} ms | "
                             f"{cell['communication_s'] * 1e3:.3g} ms | {cell['bytes']:,} | "
                             f"{total * 1e3:.3g} ms | {base / total:.2f}x |")
            lines.append("")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).resolve().parent / "results" / "sharding.md")
    parser.add_argument("--selection-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.selection_only:
        print(json.dumps(selection_seconds(args.repeats)))
        return
    if os.environ.get("JAX_NUM_CPU_DEVICES") != str(args.devices):
        os.environ["JAX_NUM_CPU_DEVICES"] = str(args.devices)
        os.execv(sys.executable, [sys.executable, __file__, *sys.argv[1:]])
    from harness import log, stamp, write

    data: dict[str, Any] = {"stamp": stamp("sharding.py"), "examples": {}}
    for name, params in REALISTIC.items():
        log(f"{name} {params}")
        data["examples"][name] = correctness_and_communication(name, params)
    data["grid"] = {}
    for name in MATRICES:
        log(f"{name} {REALISTIC[name]} on a grid")
        data["grid"][name] = correctness_and_communication(name, REALISTIC[name], grid=True)
    data["layouts"] = layouts_compared()
    log("selection")
    data["selection"] = {"mesh": selection_seconds(args.repeats),
                         "one_device": _child_selection(args.repeats)}
    log("scaling")
    data["scaling"] = json.loads(json.dumps(predicted_scaling()))
    write(args.out, _format(data), data)


if __name__ == "__main__":
    main()
