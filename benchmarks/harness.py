"""What the benchmarks of a user's runs share: their processes' environment, and how a
result is stamped and written.

A benchmark's annc processes run this checkout, on the CPU, in the `$ANNC_HOME` given,
recording on as a user's do, each waiting for the builds it made beside itself so that
the next run finds them however fast the machine is (`ANNC_WAIT_FOR_BUILDS=1`). A
result is a Markdown file and a JSON file beside it, both stamped with the machine's
fingerprint, the date and the command that made them.
"""

from __future__ import annotations

import datetime
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"


def environment(home: Path, checkout: Path = ROOT) -> dict[str, str]:
    """The environment of an annc process of a benchmark (see the module); `checkout`
    is the annc it runs (another one for a before and after: run it there too, since
    `python -m` reads its working folder first)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(checkout), env.get("PYTHONPATH")]))
    env.update(ANNC_HOME=str(home), ANNC_WAIT_FOR_BUILDS="1", JAX_PLATFORMS="cpu")
    env.pop("ANNC_NO_RECORD", None)
    return env


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def stamp(script: str) -> dict[str, Any]:
    """The machine (its fingerprint's fields), the date and this script's command line."""
    from hardware.devices.fingerprint import fingerprint

    return {"machine": fingerprint().as_dict(),
            "date": datetime.datetime.now().isoformat(timespec="minutes"),
            "command": shlex.join(["python", f"benchmarks/{script}", *sys.argv[1:]])}


def heading(title: str, stamped: dict[str, Any]) -> list[str]:
    """A result's title and its line of machine, date and command."""
    machine = stamped["machine"]
    return [f"# {title}", "",
            f"Machine `{machine['id']}` ({machine['cpu_model']}, {machine['cores']} cores); "
            f"{stamped['date']}. Command: `{stamped['command']}`."]


def write(out: Path, lines: list[str], data: dict[str, Any]) -> None:
    """The Markdown result at `out`, its data as JSON beside it; the Markdown printed."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    out.with_suffix(".json").write_text(json.dumps(data, indent=1))
    print("\n".join(lines))
