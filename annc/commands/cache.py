"""`annc cache`: what annc keeps of its builds under `$ANNC_HOME`, and emptying it.

The build cache (`builds/`) holds annc's own entries: compiled Halide kernels and
regions, the Halide runtime, auto-schedulers' schedules, kept plans, and the markers
of JAX builds. XLA's compilation cache (`jax-cache/`) is JAX's: it is shown (files and
size) but `--clear` leaves it, since annc cannot prove it wrote those files; once the
markers are gone, selection charges every JAX build a full compile again, even where
XLA's cache would still serve it. Delete the folder to reclaim its space.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from rich.table import Table

from annc.commands.tables import add_wide_argument, console_for
from annc.hardware.devices.jax_settings import cache_folder as jax_cache_folder
from annc.hardware.variants.halide import build_cache
from annc.hardware.variants.regions import catalogue
from annc.hardware.variants.regions.spec import RegionSpec

HELP = "show the build cache (compiled kernels and regions, schedules, plans, JAX builds) " \
       "and its size; --clear empties it of annc's entries"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--clear", action="store_true",
                        help="remove every entry annc wrote (XLA's own cache stays)")
    parser.add_argument("--report", choices=("table", "json"), default="table",
                        help="a table (default) or one JSON object on standard output")
    add_wide_argument(parser)


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(size)


def _shapes(shapes: list) -> str:
    return " ".join("x".join(map(str, s)) or "()" for s in shapes)


def _region(key: dict) -> str:
    """A region's key in a few words: its kind, how it is compiled, input shapes, dtype."""
    try:
        spec = RegionSpec.from_json(key["spec"])
    except (KeyError, ValueError):
        return str(key.get("what", ""))
    how = f"halide ({key.get('schedule', '')})" if key.get("what") == "halide-region" \
        else "jax"
    return f"{catalogue.kind(spec)} {how} {_shapes(list(spec.inputs))} {spec.dtype}"


def _what(key: dict) -> str:
    """An entry's key in a few words: kernel, variant, shapes, dtype."""
    if "spec" in key:
        return _region(key)
    if "kernel" in key:
        return f"{key['kernel']} {key.get('variant', '')} {_shapes(key.get('shapes', []))} " \
               f"{key.get('dtype', '')}"
    if "program" in key:
        return f"plan of {key['program']}"
    return str(key.get("what", ""))


def _version(key: dict) -> str:
    """The library version the entry was built with."""
    if "halide" in key:
        return f"halide {key['halide']}"
    return f"jax {key['jax']}" if "jax" in key else ""


def jax_cache_summary(folder: Path) -> dict[str, Any]:
    """XLA's cache folder: how many files it holds and their bytes (not followed into
    links)."""
    files = size = 0
    if folder.is_dir():
        for path in folder.rglob("*"):
            if path.is_file() and not path.is_symlink():
                files += 1
                size += path.stat().st_size
    return {"folder": str(folder), "files": files, "bytes": size}


def _clear(folder: Path, report: str) -> int:
    count, size, left = build_cache.clear()
    xla = jax_cache_folder()
    if report == "json":
        print(json.dumps({"folder": str(folder), "removed": count, "removed_bytes": size,
                          "left": left, "jax_cache_kept": str(xla)}))
        return 0
    print(f"removed {count} entries ({_size(size)}) from {folder}; XLA's cache {xla} "
          "is JAX's and stays (delete it yourself to reclaim its space)")
    if left:
        print(f"left {left} files in {folder} that annc cannot prove it wrote (another "
              "home's or an earlier annc's builds, or not annc's at all): remove them "
              "yourself if they are yours to remove")
    return 0


def run(args: argparse.Namespace) -> int:
    folder = build_cache.cache_folder()
    if args.clear:
        return _clear(folder, args.report)
    found = build_cache.entries(with_keys=True)
    entries = [e for e in found if e.owned]
    foreign = len(found) - len(entries)
    total = sum(e.size for e in entries)
    xla = jax_cache_summary(jax_cache_folder())
    if args.report == "json":
        print(json.dumps({
            "folder": str(folder), "total_bytes": total, "limit_bytes": build_cache.limit_bytes(),
            "entries": [{"file": e.path.name, "kind": e.kind, "bytes": e.size,
                         "used": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(e.used)),
                         "key": e.key} for e in reversed(entries)],
            "not_annc_files": foreign, "jax_cache": xla,
        }))
        return 0
    console = console_for(args)
    table = Table("kind", "what", "built with", "size", "last used",
                  title=f"Build cache {folder}")
    for e in reversed(entries):  # most recently used first
        table.add_row(e.kind, _what(dict(e.key)), _version(dict(e.key)), _size(e.size),
                      time.strftime("%Y-%m-%d %H:%M", time.localtime(e.used)))
    console.print(table)
    console.print(f"{len(entries)} entries, {_size(total)} of at most "
                  f"{_size(build_cache.limit_bytes())} (${build_cache.LIMIT_ENV}); "
                  "`annc cache --clear` empties it")
    if foreign:
        console.print(f"{foreign} more files there that annc cannot prove it wrote "
                      "(another home's or an earlier annc's): not used, not removed")
    console.print(f"XLA's compilation cache {xla['folder']}: {xla['files']} files, "
                  f"{_size(int(xla['bytes']))} (JAX's own; `--clear` leaves it)",
                  soft_wrap=True)
    return 0
