"""Which cost model selection uses, how it is adapted to this machine, and saying so.

The trained models, in order of preference:
1. `$ANNC_HOME/models/<fingerprint>.json`, trained by `annc train` on this machine;
2. shipped models of this very machine, `predictor/data/machines/<fingerprint>.json`,
   trained where the project measured a machine it does not develop on (a lent GPU
   machine; `scripts/gpu_import.py` puts them there);
3. the shipped default set `predictor/data/default_models.json`, trained on the
   project's reference machine.
A user model file that cannot be read, or that holds another machine's models,
is reported, left as it is, and the shipped set is used instead.

On top of the trained set, this machine's state under `$ANNC_HOME`:
- `models/<fingerprint>.corrections.json`: corrections of that set's log time,
  learnt by `annc calibrate --quick` and from every run (`predictor.adaptation`);
- `wisdom/<fingerprint>.json`: times measured on exact shapes (`predictor.wisdom`).
A file of either kind that is corrupt, of another machine or of other models is
ignored with a note, never loaded, and replaced the next time annc writes it. What this
module returns is the one `predictor.cost_model.CostModel` of all of them.
"""

from __future__ import annotations

import math
from datetime import datetime
from importlib.resources import files
from pathlib import Path

from annc.dsl.errors import ModelError
from annc.hardware.devices.fingerprint import fingerprint
from annc.hardware.devices.home import annc_home, state_folder
from annc.predictor.adaptation import digest
from annc.predictor.cost_model import CostModel
from annc.predictor.models import ModelFileError, ModelSet

DEFAULT_MODELS = Path(str(files("annc.predictor").joinpath("data", "default_models.json")))
SHIPPED_MACHINES = Path(str(files("annc.predictor").joinpath("data", "machines")))
"""Shipped models of other machines than the reference, one file per fingerprint."""


def user_models_path(fingerprint_id: str) -> Path:
    return annc_home() / "models" / f"{fingerprint_id}.json"


def corrections_path(fingerprint_id: str) -> Path:
    return annc_home() / "models" / f"{fingerprint_id}.corrections.json"


def wisdom_path(fingerprint_id: str) -> Path:
    return annc_home() / "wisdom" / f"{fingerprint_id}.json"


def for_writing(path: Path) -> Path:
    """A path of the home's (one of the above) about to be written: its folder is made,
    and a `HomeError` where it is a link (annc never writes through one)."""
    return state_folder(path.parent.name) / path.name


def load_models(notes: list[str] | None = None) -> CostModel:
    """This machine's trained models if there are any, else the shipped default set,
    with this machine's corrections and wisdom.

    Problems with user files are reported in `notes` (with the file's name and what
    to do) and the files are left as they are."""
    notes = notes if notes is not None else []
    machine = fingerprint().id
    models, origin = _trained_models(machine, notes)
    base = digest(models.source)
    cost = CostModel.load(models, "", machine, base, corrections_path(machine),
                          wisdom_path(machine), notes)
    corrections = cost.corrections
    advice = []
    own = models.fingerprint.get("id") == machine
    if not own:
        advice.append(f"note: the models were calibrated on machine "
                      f"{models.fingerprint.get('id', 'unknown')}, not this one ({machine}): "
                      "run `annc calibrate --quick` to adapt them here in a minute")
    elif corrections is None and "shipped" in origin and _age_days(models.trained_at) > 7:
        advice.append(f"note: the models are {_age_days(models.trained_at):.0f} days old; "
                      "`annc calibrate --quick` adapts them to this machine as it is today")
    if corrections is not None and corrections.stale:
        stale = corrections.stale
        advice.append(f"note: the models look stale: on {stale.get('at', '?')[:10]} measured "
                      f"times differed from the predictions by a median "
                      f"{stale.get('median_error', 0):.0%} over {stale.get('ops', '?')} ops; "
                      "run `annc calibrate --quick`")
    description = origin + _age(models)
    if corrections is not None and corrections.rows:
        description += (f"; adapted here with {corrections.rows} measurement"
                        f"{'' if corrections.rows == 1 else 's'} (last "
                        f"{corrections.updated_at[:10]})")
    cost.description, cost.notes = description, advice
    return cost


def trained_models_in_use(notes: list[str] | None = None) -> tuple[ModelSet, str]:
    """The trained set selection uses on this machine (without corrections or wisdom),
    and which it is: what `annc train` adds this machine's models to."""
    return _trained_models(fingerprint().id, notes if notes is not None else [])


def _trained_models(machine: str, notes: list[str]) -> tuple[ModelSet, str]:
    path = user_models_path(machine)
    if path.exists():
        try:
            models = ModelSet.load(path)
            owner = models.fingerprint.get("id")
            if owner != machine:
                raise ModelFileError(f"{path}: models of machine {owner!r}, not of this "
                                     f"machine ({machine})")
            return models, f"models trained on this machine ({path})"
        except ModelFileError as error:
            notes.append(f"note: {error}; using the shipped default models instead "
                         f"(run `annc train` to replace {path.name})")
    shipped = SHIPPED_MACHINES / f"{machine}.json"
    if shipped.exists():
        try:
            models = ModelSet.load(shipped)
        except ModelFileError as error:  # a broken install: the default set still works
            notes.append(f"note: {error}; using the shipped default models instead")
        else:
            if models.fingerprint.get("id") == machine:
                return models, f"shipped models of this machine ({machine})"
            notes.append(f"note: {shipped} holds models of machine "
                         f"{models.fingerprint.get('id')!r}; using the default models")
    try:
        models = ModelSet.load(DEFAULT_MODELS)
    except ModelFileError as error:
        raise ModelError(f"{error}; reinstall annc, or run `annc calibrate && annc train`") \
            from None
    reference = models.fingerprint.get("id", "unknown")
    same = " (this machine)" if reference == machine else ""
    return models, f"shipped default models from reference machine {reference}{same}"


def _age_days(when: str | None) -> float:
    if not when:
        return float("nan")
    try:
        then = datetime.fromisoformat(when)
    except ValueError:
        return float("nan")
    return (datetime.now().astimezone() - then).total_seconds() / 86400


def _age(models: ModelSet) -> str:
    if not models.trained_at:
        return ""
    days = _age_days(models.trained_at)
    old = "?" if math.isnan(days) else "today" if days < 1 else f"{days:.0f} days ago"
    return f", trained {models.trained_at[:10]} ({old})"
