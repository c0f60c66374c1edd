"""Which model set selection uses, and saying so.

In order of preference:
1. `$ANNC_HOME/models/<fingerprint>.json`, trained by `annc train` on this machine;
2. the shipped default set `predictor/data/default_models.json`, trained on the
   project's reference machine.
A user model file that cannot be read, or that holds another machine's models,
is reported, left as it is, and the shipped set is used instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from dsl.errors import AnncError
from hardware.fingerprint import fingerprint
from hardware.home import annc_home
from predictor.models import ModelFileError, ModelSet

DEFAULT_MODELS = Path(str(files("predictor").joinpath("data", "default_models.json")))


class ModelError(AnncError):
    """No usable model set, or a model file that cannot be used."""


@dataclass(frozen=True)
class ChosenModels:
    models: ModelSet
    description: str
    """Which set this is and whether it was calibrated on this machine, for the user."""


def user_models_path(fingerprint_id: str) -> Path:
    return annc_home() / "models" / f"{fingerprint_id}.json"


def load_models(notes: list[str] | None = None) -> ChosenModels:
    """This machine's trained models if there are any, else the shipped default set.

    A user model file that cannot be read is reported in `notes` (with its name and
    what to do) and the shipped set is used instead; the file is left as it is.
    """
    machine = fingerprint()
    path = user_models_path(machine.id)
    if path.exists():
        try:
            models = ModelSet.load(path)
            owner = models.fingerprint.get("id")
            if owner != machine.id:
                raise ModelFileError(f"{path}: models of machine {owner!r}, not of this "
                                     f"machine ({machine.id})")
            return ChosenModels(models, f"models trained on this machine ({path})")
        except ModelFileError as error:
            if notes is not None:
                notes.append(f"note: {error}; using the shipped default models instead "
                             f"(run `annc train` to replace {path.name})")
    try:
        models = ModelSet.load(DEFAULT_MODELS)
    except ModelFileError as error:
        raise ModelError(f"{error}; reinstall annc, or run `annc calibrate && annc train`") \
            from None
    reference = models.fingerprint.get("id", "unknown")
    same = " (this machine)" if reference == machine.id else (
        ", not calibrated on this machine; `annc calibrate && annc train` specialises them")
    return ChosenModels(models, f"shipped default models from reference machine "
                                f"{reference}{same}")
