"""The selected plan of a program, kept so that running it again skips selection.

`annc run` keys a plan by everything selection reads: the program (its text,
parameters and targets, which make its IR), the `--measure` policy, annc's version,
this machine's fingerprint and the bytes of the model, corrections and wisdom
files in use. When a run finds its key under `$ANNC_HOME/plans/`, it applies the
kept choices to the IR and skips the variant library, the models, the predictor
and placement; any change to those files (a run that taught the corrections
something, a measurement kept as wisdom, `annc train`) makes a new key. A file
that cannot be read or does not match its key is ignored and replaced.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

from xdsl.dialects.builtin import ModuleOp

from hardware.calibration.store import annc_version
from hardware.devices.fingerprint import fingerprint
from hardware.devices.home import annc_home
from passes.candidates import Candidate
from passes.models import DEFAULT_MODELS, ChosenModels, corrections_path, user_models_path
from passes.models import wisdom_path as wisdom_file
from passes.region_choice import kept_regions
from passes.select_variants import OpPlan, Plan, apply_plan
from passes.sites import data_flow
from predictor.models import ModelSet

KEPT = 200
"""Plans kept; the least recently used go first."""

hits = 0
"""How many runs of this process took a kept plan (for tests)."""


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
    return annc_home() / "plans" / f"{key}.json"


def kept_plan(module: ModuleOp, key: str) -> Plan | None:
    """The kept plan of this key applied to the module, or None."""
    global hits
    path = _path(key)
    try:
        entry = json.loads(path.read_text())
        if entry.get("key") != key:
            return None
        plan = _plan(module, entry)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    apply_plan(plan)
    os.utime(path)  # recently used
    hits += 1
    return plan


def _plan(module: ModuleOp, entry: dict[str, Any]) -> Plan:
    chosen = {op["index"]: op for op in entry["ops"]}
    ops = []
    for site in data_flow(module).sites:
        kept = chosen.get(site.index)
        if kept is None:
            ops.append(OpPlan(site, []))
            continue
        if kept["kernel"] != site.kernel:
            raise ValueError("the kept plan is of another program")
        candidate = Candidate(kept["variant"], kept["device"], kept["predicted_s"], 0.0,
                              kept["cost_s"], low_s=kept["low_s"], high_s=kept["high_s"],
                              base_s=kept["base_s"], basis=kept["basis"])
        start = None
        if kept.get("start") is not None:
            start = Candidate(str(kept["start"]), kept["device"], None, 0.0, math.inf)
        ops.append(OpPlan(site, [candidate], candidate, start))
    models = ChosenModels(ModelSet({"id": entry["machine"]}, {}), entry["models"],
                          machine=entry["machine"], base=entry["base"])
    return Plan(ops, entry["models"], entry["devices"], list(entry["notes"]),
                float(entry["transfer_s"]), chosen_models=models,
                regions=kept_regions(module, entry.get("regions", [])))


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
    path = _path(key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.partial")
        temporary.write_text(json.dumps(entry))
        os.replace(temporary, path)
        kept = sorted(path.parent.glob("*.json"), key=lambda p: p.stat().st_mtime)
        for old in kept[:-KEPT]:
            old.unlink(missing_ok=True)
    except OSError:
        return
