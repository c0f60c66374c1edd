"""`annc cache`: what the build cache under `$ANNC_HOME` holds, and emptying it."""

from __future__ import annotations

import argparse
import json
import time

from rich.console import Console
from rich.table import Table

from hardware.variants.halide import build_cache

HELP = "show the build cache (compiled kernels, schedules, plans) and its size; --clear " \
       "empties it"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--clear", action="store_true", help="remove every entry")
    parser.add_argument("--report", choices=("table", "json"), default="table",
                        help="a table (default) or one JSON object on standard output")


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(size)


def _what(key: dict) -> str:
    """An entry's key in a few words: kernel, variant, shapes, dtype."""
    if "kernel" in key:
        shapes = " ".join("x".join(map(str, s)) or "()" for s in key.get("shapes", []))
        return f"{key['kernel']} {key.get('variant', '')} {shapes} {key.get('dtype', '')}"
    if "program" in key:
        return f"plan of {key['program']}"
    return str(key.get("what", ""))


def run(args: argparse.Namespace) -> int:
    folder = build_cache.cache_folder()
    if args.clear:
        count, size = build_cache.clear()
        if args.report == "json":
            print(json.dumps({"folder": str(folder), "removed": count, "removed_bytes": size}))
        else:
            print(f"removed {count} entries ({_size(size)}) from {folder}")
        return 0
    entries = build_cache.entries(with_keys=True)
    total = sum(e.size for e in entries)
    if args.report == "json":
        print(json.dumps({
            "folder": str(folder), "total_bytes": total, "limit_bytes": build_cache.limit_bytes(),
            "entries": [{"file": e.path.name, "kind": e.kind, "bytes": e.size,
                         "used": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(e.used)),
                         "key": e.key} for e in reversed(entries)],
        }))
        return 0
    console = Console()
    table = Table("kind", "what", "halide", "size", "last used",
                  title=f"Build cache {folder}")
    for e in reversed(entries):  # most recently used first
        table.add_row(e.kind, _what(dict(e.key)), str(e.key.get("halide", "")), _size(e.size),
                      time.strftime("%Y-%m-%d %H:%M", time.localtime(e.used)))
    console.print(table)
    console.print(f"{len(entries)} entries, {_size(total)} of at most "
                  f"{_size(build_cache.limit_bytes())} (${build_cache.LIMIT_ENV}); "
                  "`annc cache --clear` empties it")
    return 0
