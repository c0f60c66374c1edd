"""A workload's run-time data: inputs read from `.npz` archives or generated, outputs saved.

Inputs are taken as given: by name, each input the program declares, of the declared
shape, converted to the declared dtype only where nothing is lost but what rounding
loses (integers and booleans with a note; an f64 beyond f32's range, or a complex
value, is refused). An input that is not given is drawn uniform in [0, 1) from
`numpy.random.default_rng(seed)`, in declaration order (any block of rows of one
alone: `hardware.execution.drawing`), only where no inputs are
given at all or the caller asks for the missing ones to be generated. Archives are
read with `allow_pickle=False`.
"""

from __future__ import annotations

import math
import os
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike
from xdsl.dialects.builtin import ArrayAttr, ModuleOp, StringAttr, TensorType
from xdsl.dialects.func import FuncOp

from annc.dsl import dtypes, types
from annc.dsl.errors import DataError, MissingInputsError
from annc.dsl.lowering import INPUTS_ATTRIBUTE
from annc.hardware.devices.allocator import aligned
from annc.hardware.execution.drawing import draw_block, positions


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


GENERATED = "uniform in [0, 1)"
"""How an input that is not given is drawn, for messages."""

def check_seed(seed: object) -> int:
    """The seed as `numpy.random.default_rng` takes it: a non-negative integer of any
    size. Anything else is a DataError here, not numpy's ValueError, which would reach
    the user as an internal error."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise DataError(f"seed: expected a non-negative integer, got {seed!r}")
    return int(seed)


def generated_inputs(specs: list[InputSpec], seed: int) -> list[np.ndarray]:
    """Every input drawn from `seed`, in declaration order: the inputs of a run given
    none."""
    return prepare_inputs(specs, None, seed).arrays


@dataclass(frozen=True)
class PreparedInputs:
    arrays: list[np.ndarray]
    """One per declared input, in declaration order, each on a 64-byte boundary."""
    notes: list[str]
    """What was done that the user did not spell out: inputs generated or converted,
    arrays ignored."""


def prepare_inputs(
    specs: list[InputSpec],
    provided: Mapping[str, ArrayLike] | None,
    seed: int,
    generate_missing: bool = False,
) -> PreparedInputs:
    """The input arrays in declaration order, taken from `provided` by name.

    With `provided` None every input is generated. Otherwise every declared input must
    be there (a MissingInputsError lists those that are not), unless `generate_missing`
    asks for them to be drawn; a note then names each. Given arrays are checked and
    converted by `converted`; arrays the program does not declare are ignored with a
    note, since one archive may serve several programs."""
    seed = check_seed(seed)
    given = _given(provided)
    declared = {spec.name for spec in specs}
    missing = [spec for spec in specs if spec.name not in given]
    undeclared = sorted(set(given) - declared)
    if provided is not None and missing and not generate_missing:
        raise MissingInputsError({spec.name: str(spec) for spec in missing}, len(specs),
                                 undeclared)
    taken = {spec.name: converted(spec, given[spec.name])
             for spec in specs if spec.name in given}
    generated = _generated(specs, set(taken), seed)
    arrays = [taken[s.name][0] if s.name in taken else generated[s.name] for s in specs]
    notes = []
    if provided is not None and missing:
        notes.append(f"note: generated the inputs not given, {GENERATED} from seed {seed}: "
                     f"{', '.join(f'{spec.name} : {spec}' for spec in missing)}")
    notes += reading_notes([f"{name} ({note})" for name, (_, note) in taken.items() if note],
                           undeclared)
    return PreparedInputs(arrays, notes)


def reading_notes(changed: list[str], undeclared: list[str]) -> list[str]:
    """What the user is told of given inputs: those converted to the declared dtype
    (`NAME (why)`), and the arrays the program does not declare."""
    notes = []
    if changed:
        notes.append(f"note: converted to the declared dtype: {', '.join(changed)}")
    if undeclared:
        notes.append("note: ignoring arrays the program does not declare as inputs: "
                     f"{', '.join(undeclared)}")
    return notes


def _given(provided: Mapping[str, ArrayLike] | None) -> dict[str, ArrayLike]:
    if provided is None:
        return {}
    if not isinstance(provided, Mapping):
        raise DataError("inputs: expected a mapping of input names to arrays, got "
                        f"{type(provided).__name__}")
    return dict(provided)


def converted(spec: InputSpec, value: ArrayLike) -> tuple[np.ndarray, str | None]:
    """A given input as an aligned array of the declared dtype, with a note where the
    conversion is one the user may not expect (integers and booleans).

    Refused, naming the input: a shape other than the declared one; data that are not
    real numbers (complex ones would lose their imaginary part); a finite value that the
    declared dtype cannot hold (an f64 beyond f32's range would become inf). Values
    already NaN or infinite stay so, as in numpy."""
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as error:
        raise DataError(f"input {spec.name}: not an array of numbers ({error})") from None
    if array.shape != spec.shape:
        raise DataError(f"input {spec.name}: given an array of shape {list(array.shape)} "
                        f"but the program declares {spec}")
    kind = array.dtype.kind
    if kind == "c":
        raise DataError(f"input {spec.name}: {array.dtype} data, not real numbers: as "
                        f"{spec} its imaginary part would be lost (give "
                        f"{spec.name}.real if that is what you mean)")
    if kind not in "biuf":
        raise DataError(f"input {spec.name}: {array.dtype} data, not real numbers")
    with np.errstate(over="ignore"):  # a value beyond the range is found and refused below
        result = aligned(np.asarray(array, dtype=spec.dtype))
    if kind == "f" and array.dtype.itemsize > spec.dtype.itemsize:
        _refuse_overflow(spec, array, result)
    dtype = dtypes.from_numpy(spec.dtype)
    return result, None if kind == "f" else f"{array.dtype} to {dtype}"


def _refuse_overflow(spec: InputSpec, given: np.ndarray, result: np.ndarray) -> None:
    """A DataError naming the first finite value of `given` that became infinite."""
    infinite = np.isinf(result)
    if not infinite.any():
        return
    beyond = infinite & np.isfinite(given)
    if not beyond.any():
        return
    index = np.unravel_index(int(np.argmax(beyond)), given.shape)
    where = spec.name + (f"[{', '.join(map(str, index))}]" if given.ndim else "")
    raise DataError(f"input {spec.name}: {where} = {float(given[index]):g} is beyond the "
                    f"range of {dtypes.from_numpy(spec.dtype)} (largest "
                    f"{float(np.finfo(spec.dtype).max):g}) and would become inf; declare "
                    f"{spec.name} as f64, or scale the data")


def _generated(specs: list[InputSpec], given: set[str], seed: int) -> dict[str, np.ndarray]:
    """The inputs not in `given`, each holding the values of its place in the one stream
    drawn from `seed` in declaration order (`hardware.execution.drawing`): the values it
    holds when none is given, whichever others are."""
    starts = positions([(spec.dtype, math.prod(spec.shape)) for spec in specs])
    return {spec.name: draw_block(seed, start, spec.dtype, 0, math.prod(spec.shape)
                                  ).reshape(spec.shape)
            for spec, start in zip(specs, starts, strict=True) if spec.name not in given}


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
