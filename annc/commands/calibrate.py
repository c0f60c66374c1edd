"""`annc calibrate`: measure the variant library on this machine into the store.

Every measurement is committed as it is taken, so Ctrl-C (exit 130), a crash
or a spent `--budget` lose nothing; running the command again continues with
what is missing. `--reference` is the maintainers' full calibration: every
combination, the noise floor, and the export to `hardware/calibration/data/`.

`--regions` measures the compiled region variants (fused chains and whole loops,
`hardware.calibration.region_sampling`) instead of the kernels, with their noise
floor; with `--reference` the shipped reference data gains them (the kernels'
rows are kept: a store without them is first filled from the shipped data).

`--communication` measures the collectives of this process's mesh of devices; with
`--distributed`, of the mesh of every process of a `jax.distributed` run, each process
taking part and process 0 storing the lines (`annc.distributed`).

`--quick` measures a minute's worth of realistic shapes instead and adapts the
current models to them (`annc.adapting`); it is resumable and Ctrl-C-safe in
the same way.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from annc.commands.common import (
    CLUSTER_OPTIONS,
    add_cluster_arguments,
    compact_shapes,
    printable,
    seconds_argument,
)
from annc.commands.variants import comma_names, selected_kernels
from annc.dsl.errors import AnncError
from annc.hardware.calibration.runs import (
    DEFAULT_TIMEOUT_S,
    Calibration,
    kernel_jobs,
    noise_floor,
    select_variants,
)
from annc.hardware.calibration.sampling import Job
from annc.hardware.calibration.store import CommunicationRow, MeasurementStore
from annc.hardware.devices.available import available_devices
from annc.hardware.devices.fingerprint import fingerprint
from annc.hardware.devices.home import default_database
from annc.process import startup_seconds

if TYPE_CHECKING:
    from annc.adapting import QuickJob
    from annc.hardware.calibration.communication import Line

HELP = "measure every kernel variant on this machine (resumable; Ctrl-C keeps every row)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kernels", metavar="K,...",
                        help="only these kernels, e.g. matmul,conv2d (default: all)")
    parser.add_argument("--variants", metavar="NAME,...",
                        help="only variants of these names, e.g. numpy,jax (default: all)")
    parser.add_argument("--devices", metavar="DEV,...",
                        help="only these devices, e.g. cpu (default: every device here)")
    parser.add_argument("--budget", type=seconds_argument, metavar="SECONDS",
                        help="stop after this many seconds (run again to continue)")
    parser.add_argument("--db", metavar="PATH",
                        help="the measurement database (default: "
                        "$ANNC_HOME/measurements.sqlite)")
    parser.add_argument("--timeout", type=seconds_argument, default=DEFAULT_TIMEOUT_S,
                        metavar="SECONDS",
                        help="record a measurement that takes longer as a timeout "
                        f"(default {DEFAULT_TIMEOUT_S:g})")
    parser.add_argument("--noise", action="store_true",
                        help="also measure a sample of the test configurations again, in two "
                        "passes, and report the noise floor (how far they land from the "
                        "held-out rows, as a MAPE); with --budget, first")
    parser.add_argument("--quick", action="store_true",
                        help="measure a few realistic shapes within --budget (default "
                        "60 s) and adapt the current models to this machine")
    parser.add_argument("--regions", action="store_true",
                        help="measure the region variants (fused chains, whole loops) "
                        "instead of the kernels")
    parser.add_argument("--communication", action="store_true",
                        help="measure the collectives of this process's mesh of devices "
                        "(several GPUs, or JAX_NUM_CPU_DEVICES=8) for the sharded candidates")
    parser.add_argument("--reference", action="store_true",
                        help="for maintainers: calibrate everything with the noise floor and "
                        "export the reference data into the package (hardware/calibration/data/)")
    add_cluster_arguments(parser, "with --communication: measure as one process of a "
                          "jax.distributed run, the collectives spanning every process's "
                          "devices; process 0 stores them", timeout="--join-timeout")


def _devices(text: str | None) -> list[str] | None:
    names = comma_names(text)
    if names is None:
        return None
    here = available_devices()
    missing = [n for n in names if n not in here]
    if missing or not names:
        raise AnncError(f"--devices: {', '.join(missing) or '(none given)'} not on this "
                        f"machine (found: {', '.join(here)})")
    return names


SHUTDOWN_S = 1.5
"""Time kept back from --budget for stopping the worker and closing the database."""


def run(args: argparse.Namespace) -> int:
    if args.distributed and not args.communication:
        raise AnncError("calibrate: --distributed measures a multi-process mesh's collectives; "
                        "it goes with --communication")
    if not args.distributed and any(getattr(args, o) is not None for o in CLUSTER_OPTIONS):
        raise AnncError("calibrate: --coordinator, --processes, --process-id and "
                        "--join-timeout go with --communication --distributed")
    if args.communication:
        return _communication(args)
    kernels = selected_kernels(args.kernels) if args.kernels else None
    devices = _devices(args.devices)
    if args.quick:
        if args.reference or args.noise:
            raise AnncError("calibrate: --quick cannot be combined with --reference or --noise")
        return _quick(args, kernels, devices)
    if args.reference:
        devices = devices or ["cpu"]
    if args.regions and (args.kernels or args.variants or args.devices):
        raise AnncError("calibrate: --regions measures every region variant; it takes no "
                        "--kernels, --variants or --devices")
    path = Path(args.db) if args.db else default_database()
    with MeasurementStore(path) as store:  # a bad database is reported before any work
        console = Console(stderr=True)
        fp = fingerprint()
        jobs: list = []
        if args.regions:
            from annc.hardware.calibration.region_sampling import region_plan

            regions, noise = region_plan()
            jobs = [*regions, *noise]
            variants = []
            if args.reference:
                _keep_reference_rows(console, store, fp.id)
            console.print(f"calibrating region variants on {len(regions)} regions and loops "
                          f"on this machine (fingerprint {fp.id}) into {path}")
        else:
            variants = select_variants(kernels, devices, comma_names(args.variants))
            if not variants:
                raise AnncError("calibrate: no variant matches --kernels, --variants and "
                                "--devices")
            jobs = kernel_jobs(variants, noise=args.noise or args.reference,
                               budgeted=args.budget is not None)
            console.print(f"calibrating {len(variants)} variant(s) of "
                          f"{len({v.kernel for v in variants})} kernel(s) on this machine "
                          f"(fingerprint {fp.id}) into {path}")
        began = time.monotonic()
        budget = None if args.budget is None else max(0.0, args.budget - startup_seconds()
                                                       - SHUTDOWN_S)
        # Copies first: they take a second or two, and placement needs them even when
        # the budget ends the kernels' measurements early.
        if variants:
            _calibrate_transfers(console, store, fp.id, {v.device for v in variants})
        if budget is not None:
            budget = max(0.0, budget - (time.monotonic() - began))
        calibration = Calibration(store, fp.id, budget_s=budget, timeout_s=args.timeout)
        try:
            with _progress(console) as progress:
                calibration.progress = progress
                stopped = calibration.run(jobs)
        except KeyboardInterrupt:
            kept = sum(calibration.taken.values())
            console.print(f"interrupted: kept the {kept} measurement(s) taken in this run "
                          f"in {path}; run the same command again to continue")
            return 130
        console.print(_summary(calibration, stopped))
        if args.noise or args.reference or args.regions:
            floor = noise_floor(store.calibration(fp.id))
            if floor.mape is not None:
                console.print(f"noise floor: {floor.mape:.1%} MAPE of re-measurements against "
                              f"the held-out rows over {floor.pairs} configurations; median over "
                              f"{len(floor.by_combination)} combinations "
                              f"{floor.median_combination:.1%}")
        if args.reference and stopped == "complete":
            from annc.hardware.calibration.reference_data import export_reference
            from annc.hardware.calibration.runs import CALIBRATION_SETTINGS

            for written in export_reference(store, fp, CALIBRATION_SETTINGS):
                console.print(f"wrote {written}")
    return 0


def _keep_reference_rows(console: Console, store: MeasurementStore, fingerprint_id: str
                         ) -> None:
    """Fills a store that lacks this machine's kernel rows from the shipped reference
    data, so that exporting it keeps them beside the regions'."""
    from annc.hardware.calibration.reference_data import load_reference
    from annc.predictor.features import is_region

    if any(not is_region(m.kernel) for m in store.calibration(fingerprint_id)):
        return
    reference = load_reference()
    if reference is None or reference.metadata["fingerprint"]["id"] != fingerprint_id:
        raise AnncError("calibrate --regions --reference: the store has no kernel rows of "
                        "this machine and the shipped reference data is of another one")
    for measurement in reference.measurements:
        if not is_region(measurement.kernel):  # the regions are measured anew
            store.add(measurement)
    store.add_calibration_time(fingerprint_id, float(reference.metadata["calibration_s"]))
    console.print(f"kept the {len(reference.measurements)} shipped reference rows in the store")


def _quick(args: argparse.Namespace, kernels: Sequence[str] | None,
           devices: list[str] | None) -> int:
    from annc.adapting import DEFAULT_BUDGET_S, adapt, quick_plan, run_quick
    from annc.choices import moved, recent_choices
    from annc.passes.models import corrections_path, load_models

    started = time.monotonic() - startup_seconds()
    path = Path(args.db) if args.db else default_database()
    console = Console(stderr=True)
    with MeasurementStore(path) as store:
        notes: list[str] = []
        chosen = load_models(notes)
        for note in notes:
            console.print(printable(note), soft_wrap=True, markup=False)
        variants = select_variants(kernels, devices, comma_names(args.variants))
        if not variants:
            raise AnncError("calibrate: no variant matches --kernels, --variants and --devices")
        budget = args.budget if args.budget is not None else DEFAULT_BUDGET_S
        deadline = started + budget - SHUTDOWN_S
        jobs = quick_plan(chosen, variants, kernels or sorted({v.kernel for v in variants}))
        before = recent_choices()
        console.print(f"quick calibration: up to {len(jobs)} measurement(s) of realistic "
                      f"shapes within {budget:g} s, then adapting {chosen.description}")
        try:
            with _progress(console) as progress:
                result = run_quick(store, chosen, jobs, deadline, args.timeout, progress)
        except KeyboardInterrupt:
            console.print(f"interrupted: the measurements taken are kept in {path}; run the "
                          "same command again to continue and adapt")
            return 130
        corrections = adapt(store, chosen)
    _, fitted = corrections.fit(chosen.trained)
    by_device: dict[str, list[float]] = {}
    for (_, _, device), correction in fitted.items():
        by_device.setdefault(device, []).append(correction.offset)
    shifts = ", ".join(f"{d} x{math.exp(statistics.median(v)):.2f}"
                       for d, v in sorted(by_device.items()))
    text = f"measured {result.taken} configuration(s)"
    if result.failed:
        text += f" ({result.failed} failed)"
    if result.skipped:
        text += f"; {result.skipped} measured earlier today were kept"
    if result.stopped == "budget":
        text += f"; budget spent with {result.remaining} left (run again to continue)"
    console.print(f"{text}; adapted {len(corrections.residuals)} combination(s) from "
                  f"{corrections.rows} measurement(s) (median shift per device: "
                  f"{shifts or 'none'}) into "
                  f"{corrections_path(chosen.machine)} in {time.monotonic() - started:.1f} s")
    for line in moved(before):
        console.print(line, soft_wrap=True, markup=False)
    return 0


def _calibrate_transfers(console: Console, store: MeasurementStore, fingerprint_id: str,
                         devices: set[str]) -> None:
    """Copy times between the host and every other device calibrated, for placement;
    sizes already stored are not measured again."""
    from annc.hardware.calibration.store import annc_version
    from annc.hardware.calibration.transfers import measure_transfers

    for name in sorted(devices - {"cpu"}):
        added = measure_transfers(store, fingerprint_id, available_devices()[name],
                                  annc_version())
        if added:
            console.print(f"measured {added} host<->{name} copy sizes for the transfer model")


def _communication(args: argparse.Namespace) -> int:
    """`--communication`: every kind of collective on this process's mesh, into the store
    (`hardware.calibration.communication`); the sharded candidates' model reads them."""
    if args.quick or args.regions or args.reference or args.noise or args.kernels:
        raise AnncError("calibrate: --communication measures the mesh's collectives only; "
                        "run the other calibrations on their own")
    if args.distributed:
        return _distributed_communication(args)
    from annc.hardware.calibration.communication import measure_collectives
    from annc.hardware.devices.mesh import mesh_info, process_mesh

    mesh, info = process_mesh(), mesh_info()
    if mesh is None or info is None:
        raise AnncError("calibrate --communication: this process sees one device of its "
                        "kind, so there is no mesh to measure; give it several (a node's "
                        "GPUs, or JAX_NUM_CPU_DEVICES=8 for simulated CPU devices)")
    path = Path(args.db) if args.db else default_database()
    with MeasurementStore(path) as store:
        console = Console(stderr=True)
        fp = fingerprint()
        console.print(f"measuring collectives on {info.describe()} (fingerprint {fp.id}) "
                      f"into {path}")
        rows = measure_collectives(mesh, fp.id, info, progress=console.print)
        _print_lines(_stored(store, rows))
    return 0


def _stored(store: MeasurementStore, rows: list[CommunicationRow]) -> dict[str, Line]:
    """Adds the rows; the lines fitted to every row of their mesh."""
    from annc.hardware.calibration.communication import fit

    store.add_communication(rows)
    first = rows[0]
    return fit(store.communication(first.fingerprint, first.device, first.devices,
                                   first.processes, first.hosts))


def _print_lines(lines: dict[str, Line]) -> None:
    for kind, (latency, per_byte) in lines.items():
        rate = f"{1 / per_byte / 1e9:.3g} GB/s" if per_byte > 0 else "no per-byte cost"
        print(f"{kind}: {latency * 1e6:.3g} µs + bytes at {rate}")


def _distributed_communication(args: argparse.Namespace) -> int:
    """`--communication --distributed`: every process joins the run and takes part in
    every collective; process 0 times them and stores its times, tagged with the
    mesh's processes and hosts, and prints the lines."""
    from annc import distributed
    from annc.hardware.calibration.communication import measure_collectives
    from annc.hardware.devices.mesh import mesh_info, process_mesh

    cluster = distributed.Cluster(args.coordinator, args.processes, args.process_id,
                                  args.cluster_timeout or distributed.DEFAULT_TIMEOUT_S)
    path = Path(args.db) if args.db else default_database()
    console = Console(stderr=True)
    with distributed.quiet_stdout():
        process, _ = distributed.join(cluster)
        first = process == 0
        mesh, info = process_mesh(), mesh_info()
        assert mesh is not None and info is not None  # two processes have two devices
        fp = fingerprint()
        distributed.attempt("opening the measurement store (process 0)",
                            lambda: MeasurementStore(path).close() if first else None)
        if first:
            console.print(f"measuring collectives on {info.describe()} (fingerprint {fp.id}) "
                          f"into {path}")
        rows = distributed.attempt("measuring the collectives", lambda: measure_collectives(
            mesh, fp.id, info, progress=console.print if first else None))
        assert rows is not None

        def store() -> dict[str, Line] | None:
            if not first:
                return None
            with MeasurementStore(path) as opened:
                return _stored(opened, rows)

        lines = distributed.attempt("storing the collectives (process 0)", store)
    if lines is not None:
        _print_lines(lines)
    return 0


def _summary(calibration: Calibration, stopped: str) -> str:
    taken = calibration.taken
    statuses = ", ".join(f"{taken[s]} {s}" for s in ("ok", "failed", "timeout", "crashed")
                         if taken[s])
    text = f"stored {sum(taken.values())} measurement(s)" + (f" ({statuses})" if statuses
                                                             else "")
    if calibration.skipped:
        text += f"; {calibration.skipped} already stored were skipped"
    if stopped == "budget":
        text += f"; budget spent, {calibration.remaining} left: run again to continue"
    return text


class _progress:
    """A rich progress bar with ETA on a terminal; a line every 10 s otherwise."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.bar: Progress | None = None
        self.task: TaskID | None = None
        self.last = 0.0

    def __enter__(self) -> _progress:
        if self.console.is_terminal:
            self.bar = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                console=self.console, transient=False)
            self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)

    def __call__(self, job: Job | QuickJob | None, done: int, total: int) -> None:
        if job is None:  # the end
            if self.bar is not None and self.task is not None:
                self.bar.update(self.task, completed=done, description="done")
            return
        what = f"{job.variant.kernel} {job.variant.name} {compact_shapes(job.config.shapes)}"
        if self.bar is not None:
            if self.task is None:
                self.task = self.bar.add_task(what, total=total)
            self.bar.update(self.task, completed=done, description=f"{what:<44.44}")
        elif time.monotonic() - self.last >= 10:
            self.last = time.monotonic()
            print(f"{done}/{total} measured; now {what}", file=sys.stderr, flush=True)
