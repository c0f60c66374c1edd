"""A workload's run-time data: inputs read from `.npz` archives or generated, outputs saved.

Inputs are taken by name from the archive; their shape must equal the declared
one and their dtype is converted to the declared dtype. Inputs absent from the
archive are drawn uniform in [0, 1), in declaration order, from
`numpy.random.default_rng(seed)`. Archives are read with `allow_pickle=False`.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from xdsl.dialects.builtin import ArrayAttr, ModuleOp, StringAttr, TensorType
from xdsl.dialects.func import FuncOp

from dsl import dtypes, types
from dsl.errors import DataError
from dsl.lowering import INPUTS_ATTRIBUTE
from hardware.devices.allocator import aligned


@dataclass(frozen=True)
class InputSpec:
    name: str
    dtype: np.dtype
    shape: tuple[int, ...]

    def __str__(self) -> str:
        return str(types.TensorType(dtypes.from_numpy(self.dtype), self.shape))


def input_specs(module: ModuleOp) -> list[InputSpec]:
    names = module.attributes[INPUTS_ATTRIBUTE]
    assert isinstance(names, ArrayAttr)
    function = next(op for op in module.ops if isinstance(op, FuncOp))
    specs = []
    for name, arg in zip(names.data, function.body.block.args, strict=True):
        assert isinstance(name, StringAttr) and isinstance(arg.type, TensorType)
        dtype = dtypes.to_numpy(dtypes.of_tensor(arg.type))
        specs.append(InputSpec(name.data, dtype, tuple(arg.type.get_shape())))
    return specs


def read_archive(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Every array of an `.npz` archive, or a DataError saying why it cannot be read."""
    try:
        with open(path, "rb") as file:
            magic = file.read(6)
        if magic[:2] != b"PK" and magic != b"\x93NUMPY":  # neither a zip nor a .npy file
            raise DataError(f"{path}: not an .npz archive; save inputs with "
                            "numpy.savez(path, NAME=array, ...)")
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise DataError(f"{path}: not an .npz archive (it holds a single array); "
                            "save inputs with numpy.savez(path, NAME=array, ...)")
        with archive:
            return {name: archive[name] for name in archive.files}
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise DataError(f"{path}: cannot read it as an .npz archive ({error})") from None


def prepare_inputs(
    specs: list[InputSpec],
    provided: dict[str, np.ndarray],
    seed: int,
) -> list[np.ndarray]:
    """The input arrays in declaration order: from `provided` by name, or generated."""
    rng = np.random.default_rng(seed)
    arrays = []
    for spec in specs:
        if spec.name in provided:
            array = np.asarray(provided[spec.name])
            if array.shape != spec.shape:
                raise DataError(f"input {spec.name}: the archive holds an array of shape "
                                f"{list(array.shape)} but the program declares {spec}")
            real = np.issubdtype(array.dtype, np.number) and not np.issubdtype(
                array.dtype, np.complexfloating)
            if not (real or array.dtype == np.bool_):
                raise DataError(f"input {spec.name}: the archive holds {array.dtype} data, "
                                "not real numbers")
            with np.errstate(all="ignore"):  # f64 beyond f32's range becomes ±inf, as in numpy
                arrays.append(aligned(np.asarray(array, dtype=spec.dtype)))
        else:
            arrays.append(aligned(rng.random(spec.shape, dtype=spec.dtype)))
    return arrays


def save_outputs(path: str | os.PathLike[str], outputs: dict[str, np.ndarray]) -> None:
    """Writes every output under its own name to an `.npz` file (scalars as 0-d arrays).

    The file is written to a temporary name and renamed, so an interrupted save never
    leaves a half-written archive where the user asked for one.
    """
    target = Path(path)
    temporary = None
    try:
        descriptor, temporary = tempfile.mkstemp(dir=target.parent, suffix=".npz.partial")
        with os.fdopen(descriptor, "wb") as file, zipfile.ZipFile(file, "w") as archive:
            for name, value in outputs.items():
                with archive.open(f"{name}.npy", "w") as entry:
                    np.lib.format.write_array(entry, np.asarray(value), allow_pickle=False)
        os.replace(temporary, target)
        temporary = None
    except OSError as error:
        raise DataError(f"cannot write {path}: {error.strerror or error}") from None
    finally:
        if temporary is not None and os.path.exists(temporary):
            os.unlink(temporary)
