"""The selected plan of a program, kept so that running it again skips selection.

`annc run` keys a plan by everything selection reads: the program (its text,
parameters and targets, which make its IR), the `--measure` policy, annc's version,
this machine's fingerprint and the bytes of the model, corrections and wisdom
files in use. When a run finds its key under `$ANNC_HOME/plans/`, it applies the
kept choices to the IR and skips the variant library, the models, the predictor
and placement; any change to those files (a run that taught the corrections
something, a measurement kept as wisdom, `annc train`) makes a new key.

A plan is used only when the home signed it (`hardware.devices.signing`) and every
choice in it still holds here: each variant is one the library has for its kernel
(or region) and device, each device is one this machine has, each number a finite
time. Any other file is ignored: selection runs again, and its plan replaces a file
annc signed. Only plans annc signed are ever replaced or pruned.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

from xdsl.dialects.builtin import ModuleOp

from annc.dsl.errors import HomeError
from annc.hardware import events
from annc.hardware.calibration.store import annc_version
from annc.hardware.devices.available import available_devices
from annc.hardware.devices.fingerprint import fingerprint
from annc.hardware.devices.home import annc_home, own_folder, read_unlinked, state_folder
from annc.hardware.devices.signing import record_signature, signed_record
from annc.hardware.variants import load_variant
from annc.hardware.variants.regions.catalogue import OPS, region_variant
from annc.passes.candidates import Candidate, OpPlan
from annc.passes.models import DEFAULT_MODELS, corrections_path, user_models_path
from annc.passes.models import wisdom_path as wisdom_file
from annc.passes.region_choice import kept_regions
from annc.passes.select_variants import Plan, apply_plan
from annc.passes.sites import data_flow
from annc.predictor.cost_model import CostModel
from annc.predictor.models import ModelSet

FOLDER = "plans"

KEPT = 200
"""Plans kept; the least recently used go first."""

def _digest(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return "-"


def plan_key(program: str, measure: str, runs: int = 1) -> str:
    """What selection of a program would read, hashed: the program (`annc.history.
    program_key`: what its IR is made from), `runs` (the runs a build is expected to
    serve), the policy, the machine and the files of models, corrections and wisdom."""
    machine = fingerprint().id
    trained = user_models_path(machine)
    models = trained if trained.exists() else DEFAULT_MODELS
    parts = [program, measure, annc_version(), machine, _digest(models),
             _digest(corrections_path(machine)), _digest(wisdom_file(machine)), runs]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:32]


def _path(key: str) -> Path:
    return annc_home() / FOLDER / f"{key}.json"


def _signed_entry(path: Path) -> dict[str, Any] | None:
    """The file's plan where this home signed it (a regular file, not a link), or None."""
    data = read_unlinked(path)
    try:
        entry = json.loads(data) if data is not None else None
    except ValueError:
        return None
    return entry if signed_record(entry) else None


def kept_plan(module: ModuleOp, key: str, notes: list[str] | None = None) -> Plan | None:
    """The kept plan of this key applied to the module, or None; why a plan that is there
    was not taken goes to `notes`."""
    path = _path(key)
    if not own_folder(path.parent) or not os.path.lexists(path):
        return None
    entry = _signed_entry(path)
    if entry is None or entry.get("key") != key:
        _note(notes, f"note: {path} is not a plan annc wrote here; it is left in place "
                     "and not used (remove it, and annc keeps this program's plan again)")
        return None
    try:
        plan = _plan(module, entry)
    except (ValueError, KeyError, TypeError, LookupError, ImportError) as error:
        _note(notes, f"note: the kept plan {path.name} no longer holds here ({error}); "
                     "selected anew")
        return None
    apply_plan(plan)
    with contextlib.suppress(OSError):
        os.utime(path)  # recently used
    events.count("plan kept")
    return plan


def _note(notes: list[str] | None, note: str) -> None:
    if notes is not None:
        notes.append(note)


def _time(value: Any) -> float:
    """A kept time: a finite, non-negative number; a ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or not math.isfinite(value) or value < 0:
        raise ValueError(f"not a time: {value!r}")
    return float(value)


def _optional_time(value: Any) -> float | None:
    return None if value is None else _time(value)


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"not a name: {value!r}")
    return value


def _device(value: Any) -> str:
    """A device this machine has (a kept plan of another machine names others)."""
    name = _text(value)
    if name != "cpu" and name not in available_devices():
        raise ValueError(f"no device {name!r} here")
    return name


def _kernel_variant(kernel: str, value: Any, device: str) -> str:
    """A variant the library has for this kernel on this device."""
    name = _text(value)
    load_variant(kernel, name, device)
    return name


def _plan(module: ModuleOp, entry: dict[str, Any]) -> Plan:
    """The plan of a signed entry, each choice checked against this machine and library
    (a ValueError, LookupError or ImportError where one does not hold)."""
    chosen = {op["index"]: op for op in entry["ops"]}
    ops = []
    for site in data_flow(module).sites:
        kept = chosen.get(site.index)
        if kept is None:
            ops.append(OpPlan(site, []))
            continue
        if kept["kernel"] != site.kernel:
            raise ValueError("the kept plan is of another program")
        device = _device(kept["device"])
        candidate = Candidate(_kernel_variant(site.kernel, kept["variant"], device), device,
                              _optional_time(kept["predicted_s"]), 0.0, _time(kept["cost_s"]),
                              low_s=_optional_time(kept["low_s"]),
                              high_s=_optional_time(kept["high_s"]),
                              base_s=_optional_time(kept["base_s"]), basis=kept["basis"])
        start = None
        if kept.get("start") is not None:
            start = Candidate(_kernel_variant(site.kernel, kept["start"], device), device,
                              None, 0.0, math.inf)
        ops.append(OpPlan(site, [candidate], candidate, start))
    for region in entry.get("regions", []):
        _device(region["device"])
        for name in (region["variant"], region.get("start")):
            if name is not None and _text(name) != OPS:
                region_variant(name)
    machine = _text(entry["machine"])
    models = CostModel(ModelSet({"id": machine}, {}), _text(entry["models"]),
                          machine=machine, base=entry["base"])
    return Plan(ops, entry["models"], [_device(d) for d in entry["devices"]],
                [_text(n) for n in entry["notes"]], _time(entry["transfer_s"]),
                chosen_models=models, regions=kept_regions(module, entry.get("regions", [])))


def keep(plan: Plan, key: str) -> None:
    """Writes the plan under its key, atomically; never fails a run."""
    if plan.chosen_models is None:
        return
    entry = {
        "key": key, "models": plan.models, "devices": plan.devices, "notes": plan.notes,
        "transfer_s": plan.transfer_s, "machine": plan.chosen_models.machine,
        "base": plan.chosen_models.base,
        "ops": [{"index": op.site.index, "kernel": op.site.kernel,
                 "variant": op.chosen.variant, "device": op.chosen.device,
                 "predicted_s": op.chosen.predicted_s, "cost_s": op.chosen.cost_s,
                 "low_s": op.chosen.low_s, "high_s": op.chosen.high_s,
                 "base_s": op.chosen.base_s, "basis": op.chosen.basis,
                 "start": op.start.variant if op.start is not None else None}
                for op in plan.ops if op.chosen is not None],
        "regions": [{"index": r.index, "kind": r.kind, "variant": r.chosen.variant,
                     "device": r.chosen.device, "predicted_s": r.chosen.predicted_s,
                     "cost_s": r.chosen.cost_s, "low_s": r.chosen.low_s,
                     "high_s": r.chosen.high_s,
                     "start": r.start.variant if r.start is not None else None}
                    for r in plan.regions if r.chosen is not None],
    }
    try:
        folder = state_folder(FOLDER)
    except HomeError:
        return
    entry["signature"] = record_signature(entry)
    if entry["signature"] is None:
        return
    path = folder / f"{key}.json"
    if os.path.lexists(path) and _signed_entry(path) is None:
        return  # not provably annc's: left alone
    temporary = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        temporary.write_text(json.dumps(entry))
        os.replace(temporary, path)
    except OSError:
        with contextlib.suppress(OSError):
            temporary.unlink()
        return
    _prune(folder)


def _prune(folder: Path) -> None:
    """Removes the least recently used of annc's plans beyond `KEPT`."""
    files = list(folder.glob("*.json"))
    if len(files) <= KEPT:
        return
    plans = []
    for path in files:
        with contextlib.suppress(OSError):
            if not path.is_symlink() and _signed_entry(path) is not None:
                plans.append((path.stat().st_mtime, path))
    for _, old in sorted(plans)[:-KEPT]:
        with contextlib.suppress(OSError):
            old.unlink()
