"""Halide pipelines compiled ahead of time into shared objects, kept in the build cache.

Halide 21's Python bindings write static libraries but no loadable library, so a
pipeline is compiled with `compile_to_static_library` for the host target without
Halide's runtime (`NoRuntime`), and linked by the system C compiler (`$CC`, else
`cc`) into a shared object; the runtime is compiled once per target
(`compile_standalone_runtime`) into a shared object of its own, loaded with global
symbols before any kernel. Both are kept in the build cache
(`hardware.variants.halide.build_cache`), keyed by target, Halide version and machine, so a later
process loads them (about a third of a millisecond) instead of compiling.

Where there is no C compiler, `c_compiler()` is None and the variants JIT-compile as
before (`hardware.variants.halide.cpu` says so once).
"""

from __future__ import annotations

import base64
import functools
import importlib.metadata
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import halide as hl
import numpy as np

from annc.hardware.devices.backend_start import mark_started
from annc.hardware.devices.fingerprint import fingerprint
from annc.hardware.variants.halide import build_cache
from annc.hardware.variants.halide.abi import AotFunction, load_shared_object

LINK_TIMEOUT_S = 120.0


class BuildError(RuntimeError):
    """The C compiler could not link a Halide library."""


def c_compiler() -> str | None:
    """The C compiler's path (`$CC`, else `cc`), or None where there is none."""
    return _which(os.environ.get("CC") or "cc", os.environ.get("PATH", ""))


@functools.cache
def _which(program: str, path: str) -> str | None:
    """`shutil.which`, once per program and PATH (selection asks for every candidate)."""
    return shutil.which(program, path=path)


@functools.cache
def halide_version() -> str:
    try:
        return importlib.metadata.version("halide")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def aot_target(jit_target: hl.Target) -> hl.Target:
    """The JIT target without `jit`: what a shared object is compiled for."""
    return jit_target.without_feature(hl.TargetFeature.JIT)


def cache_key(target: hl.Target, **fields: Any) -> dict[str, Any]:
    """A build cache key: the fields given, the target, Halide's version, the machine."""
    return {**fields, "target": target.to_string(), "halide": halide_version(),
            "fingerprint": fingerprint().id}


def _link(compiler: str, output: Path, inputs: list[str]) -> None:
    command = [compiler, "-shared", "-o", str(output), *inputs, "-lpthread", "-ldl", "-lm"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=LINK_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise BuildError(f"{' '.join(command)}: {error}") from None
    if done.returncode != 0:
        raise BuildError(f"{' '.join(command)} failed: {done.stderr.strip()[-500:]}")


def _runtime_bytes(target: hl.Target, compiler: str) -> bytes:
    with tempfile.TemporaryDirectory(prefix="annc-build-") as folder:
        obj = Path(folder) / "runtime.o"
        hl.compile_standalone_runtime(str(obj), target)
        library = Path(folder) / "runtime.so"
        _link(compiler, library, [str(obj)])
        return library.read_bytes()


_RUNTIMES: dict[str, object] = {}


def ensure_runtime(target: hl.Target, compiler: str) -> None:
    """Loads Halide's runtime for this target once per process, from the cache or built."""
    name = target.to_string()
    if name in _RUNTIMES:
        return
    key = cache_key(target, what="halide-runtime")
    payload = build_cache.read("runtime", key)
    if payload is not None:
        try:
            _RUNTIMES[name] = load_shared_object(payload, global_symbols=True)
            return
        except OSError as error:
            _unusable("runtime", key, error)
    payload = _runtime_bytes(target, compiler)
    build_cache.write("runtime", key, payload)
    _RUNTIMES[name] = load_shared_object(payload, global_symbols=True)


def load_kept(kind: str, key: Mapping[str, Any], symbol: str,
              shapes: tuple[tuple[int, ...], ...], dtype: np.dtype) -> AotFunction | None:
    """The kept build of this key, loaded; None where there is none, or where it verified
    but will not load (then it is removed, so that this build replaces it)."""
    payload = build_cache.read(kind, key)
    if payload is None:
        return None
    try:
        return AotFunction(load_shared_object(payload), symbol, shapes, dtype)
    except (OSError, AttributeError) as error:  # dlopen refused it, or no such symbol
        _unusable(kind, key, error)
        return None


def _unusable(kind: str, key: Mapping[str, Any], error: Exception) -> None:
    build_cache.discard(kind, key)
    build_cache.note_once(f"note: a kept {kind} build would not load ({error}); rebuilt")


def shared_object(pipeline: hl.Pipeline, arguments: list[hl.Argument], symbol: str,
                  target: hl.Target, compiler: str) -> bytes:
    """The pipeline compiled and linked into a shared object exporting `symbol`."""
    with tempfile.TemporaryDirectory(prefix="annc-build-") as folder:
        prefix = str(Path(folder) / "kernel")
        pipeline.compile_to_static_library(
            prefix, arguments, symbol, target.with_feature(hl.TargetFeature.NoRuntime))
        mark_started("halide")
        library = Path(folder) / "kernel.so"
        _link(compiler, library,
              ["-Wl,--whole-archive", prefix + ".a", "-Wl,--no-whole-archive"])
        return library.read_bytes()


@dataclass(frozen=True)
class StoredSchedule:
    """An auto-scheduler's schedule as kept in the cache: the C++ text it printed and the
    scheduled pipeline, serialised by Halide (`hlpipe`), which compiles as it was."""

    scheduler: str
    source: str
    seconds: float
    pipeline: bytes

    def to_bytes(self) -> bytes:
        return json.dumps({"scheduler": self.scheduler, "source": self.source,
                           "seconds": self.seconds,
                           "hlpipe": base64.b64encode(self.pipeline).decode()}).encode()

    @staticmethod
    def from_bytes(data: bytes) -> StoredSchedule | None:
        try:
            fields: Mapping[str, Any] = json.loads(data)
            return StoredSchedule(str(fields["scheduler"]), str(fields["source"]),
                                  float(fields["seconds"]), base64.b64decode(fields["hlpipe"]))
        except (ValueError, KeyError, TypeError):
            return None


def serialise(pipeline: hl.Pipeline) -> bytes:
    return hl.serialize_pipeline(pipeline)


def deserialise(data: bytes, input_names: list[str]) -> tuple[hl.Pipeline, list[hl.Argument]]:
    """A serialised pipeline and its arguments, in the order of `input_names`."""
    pipeline = hl.deserialize_pipeline(data)
    by_name = {argument.name: argument for argument in pipeline.infer_arguments()}
    return pipeline, [by_name[name] for name in input_names]
