"""Shipped models and reference data of machines other than the reference one.

A lent GPU machine's measurements and the models trained there ship in the package
(`scripts/gpu_import.py`): on a machine of that fingerprint they come before the
default set; anywhere else they are never used.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from model_fixtures import install_for_this_machine, model_set

import annc.passes.models as chosen_models
from annc.cli import main
from annc.hardware.calibration.reference_data import DATA_FOLDER, load_reference
from annc.hardware.devices.fingerprint import fingerprint
from annc.hardware.variants import UnknownVariantError, complexity_of
from annc.predictor.models import ModelSet

SHIPPED = sorted(chosen_models.SHIPPED_MACHINES.glob("*.json"))


@pytest.fixture
def shipped_here(tmp_path, monkeypatch) -> Path:
    """A shipped-machines folder holding a set for this machine; an empty home."""
    folder = tmp_path / "machines"
    folder.mkdir()
    monkeypatch.setattr(chosen_models, "SHIPPED_MACHINES", folder)
    monkeypatch.setenv("ANNC_HOME", str(tmp_path / "home"))
    path = folder / f"{fingerprint().id}.json"
    model_set({("matmul", "numpy", "cpu"): 2e-3}).save(path)
    return path


def test_shipped_models_of_this_machine_come_before_the_default_set(shipped_here):
    notes: list[str] = []
    chosen = chosen_models.load_models(notes)
    assert chosen.description.startswith(f"shipped models of this machine ({fingerprint().id})")
    assert chosen.trained.source == str(shipped_here)
    assert notes == []


def test_models_trained_here_come_before_the_shipped_ones(shipped_here, tmp_path):
    install_for_this_machine(model_set({("matmul", "numpy", "cpu"): 1e-3}), tmp_path / "home")
    chosen = chosen_models.load_models([])
    assert "trained on this machine" in chosen.description


@pytest.mark.parametrize("damage", ["corrupt", "other-machine"])
def test_a_bad_shipped_file_falls_back_to_the_default_set_with_a_note(shipped_here, damage):
    if damage == "corrupt":
        shipped_here.write_text("{not json")
    else:
        data = json.loads(shipped_here.read_text())
        data["fingerprint"] = {"id": "another-machine"}
        shipped_here.write_text(json.dumps(data))
    notes: list[str] = []
    chosen = chosen_models.load_models(notes)
    assert "shipped default models from reference machine" in chosen.description
    (note,) = notes
    assert str(shipped_here) in note


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_each_shipped_machine_has_its_models_and_the_measurements_they_came_from(path):
    models = ModelSet.load(path)
    assert models.fingerprint["id"] == path.stem
    reference = load_reference(DATA_FOLDER / "machines" / path.stem)
    assert reference is not None
    assert reference.metadata["fingerprint"]["id"] == path.stem
    assert {m.fingerprint for m in reference.measurements} == {path.stem}
    measured = {(m.kernel, m.variant, m.device) for m in reference.measurements
                if m.status == "ok" and m.kernel != "copy"}
    assert measured == set(models.models)
    devices = {device for _, _, device in measured}
    assert set(models.transfers.to_json()) == devices - {"cpu"}
    assert models.trained_at and 0 < models.step_overhead_s < 1e-3


def test_gpu_variants_have_their_complexity_where_no_gpu_is():
    shapes = ((30, 40), (40, 50))
    assert complexity_of("matmul", "cupy", "gpu")(shapes) == complexity_of(
        "matmul", "numpy", "cpu")(shapes)
    assert complexity_of("matmul", "jax", "gpu")(shapes) == complexity_of(
        "matmul", "jax", "cpu")(shapes)
    image = ((100, 90), (5, 5))
    assert complexity_of("conv2d", "cupy.fft", "gpu")(image) == complexity_of(
        "conv2d", "fft.jax", "cpu")(image)
    for kernel, name, device in [("conv2d", "cupy", "gpu"), ("matmul", "cupy.fft", "gpu"),
                                 ("matmul", "cuda.magic", "gpu"), ("matmul", "cupy", "cpu")]:
        with pytest.raises(UnknownVariantError):
            complexity_of(kernel, name, device)


@pytest.mark.parametrize("path", SHIPPED[:1], ids=[p.stem for p in SHIPPED[:1]])
def test_a_shipped_machine_trains_here_and_keeps_the_step_overhead_measured_there(
        path, tmp_path, monkeypatch, capsys):
    import annc.commands.train as train_command

    folder = tmp_path / "machines"
    folder.mkdir()
    target = folder / path.name
    target.write_bytes(path.read_bytes())
    monkeypatch.setattr(train_command, "SHIPPED_MACHINES", folder)
    monkeypatch.setenv("ANNC_HOME", str(tmp_path / "home"))
    assert main(["train", "--reference", "--machine", path.stem]) == 0
    trained, shipped = ModelSet.load(target), ModelSet.load(path)
    assert trained.step_overhead_s == shipped.step_overhead_s
    assert trained.backend_start_s == shipped.backend_start_s
    assert set(trained.models) == set(shipped.models)
    assert any(device == "gpu" for _, _, device in trained.models)
    assert f"reference data of machine {path.stem}" in capsys.readouterr().err


def test_machine_options_are_checked(capsys):
    assert main(["train", "--machine", "3a5b533e5cb4"]) == 1
    assert "give --reference too" in capsys.readouterr().err
    assert main(["evaluate", "--machine", "0123456789ab"]) == 1
    err = capsys.readouterr().err
    assert "no reference data of machine 0123456789ab" in err and "Traceback" not in err
