"""One process of a distributed run, watched: what ends it is said in annc's words.

A process that dies in a `jax.distributed` run (killed, out of memory, a host that
went down) is noticed by JAX's coordination service, which then ends every other
process from native code: an abort with its own log lines and a C++ stack, no
Python exception annc could catch. So `annc run --distributed` runs the process as
a child of a small watcher that imports nothing heavy (so does `annc calibrate
--communication --distributed`) (`annc.cli` asks
`watched_run` before it imports the command): the watcher passes the
child's output through, keeps back the native log lines, and where the child ends
other than by annc's own exit statuses it says which process stopped, in one line,
and exits 1. Ctrl-C reaches the child as it reaches any process of the terminal.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
from collections.abc import Sequence

WORKER = "ANNC_DISTRIBUTED_WORKER"
"""Set in the watched child, so that it runs the program instead of watching."""

ANNC_EXITS = (0, 1, 2, 70, 130)
"""Exit statuses that annc itself chose (it has said why)."""

NATIVE_LINE = re.compile(
    r"^(?:[EFWI]\d{4} \d\d:\d\d:\d\d|\*\*\* |\s*@\s+0x|\s*#\d+\s+0x|PC: @|Check failure"
    r"|terminate called|Fatal Python error|Aborted|Current thread|Thread 0x|  File \""
    r"|\[Gloo\] )")
"""A line of native logging (glog's, Gloo's), a stack or a faulthandler dump: not
meant for a user. The lines after one may continue it: they are held back, and said
only where the process ends by annc's own exit."""

ANNC_LINE = re.compile(r"^(?:annc:|note:|warning:)")

TASKS = re.compile(r"task:(\d+)|stopped sending heartbeats\):\s*\n((?:\s*\d+\s*\n)+)")
"""Where JAX's coordination service names the processes that stopped."""


def watched_run(argv: Sequence[str]) -> tuple[bool, int | None]:
    """Whether these `annc` arguments are an `annc run --distributed` (or `calibrate
    --distributed`) to watch (not in the watched child), and the process id they name,
    if they name one."""
    if os.environ.get(WORKER) == "1" or not argv or argv[0] not in ("run", "calibrate"):
        return False, None
    words = argparse.ArgumentParser(add_help=False)
    words.add_argument("--distributed", action="store_true")
    words.add_argument("--process-id")
    known, _ = words.parse_known_args(argv[1:])
    process_id = known.process_id
    return known.distributed, int(process_id) if str(process_id).isdigit() else None


def watch(argv: Sequence[str], process_id: int | None) -> int:
    """Runs `annc` with `argv` as a watched child; its exit status, or 1 with a line
    saying why the distributed run ended where native code ended it."""
    child = subprocess.Popen([sys.executable, "-m", "annc", *argv], stderr=subprocess.PIPE,
                             env={**os.environ, WORKER: "1"}, text=True, errors="replace")
    assert child.stderr is not None
    debugging = os.environ.get("ANNC_DEBUG") == "1"  # then everything is said as it came
    native: list[str] = []
    pending: list[str] = []  # lines after a native one: its continuation, or annc's own
    try:
        for line in child.stderr:
            if debugging:
                _say(line)
            elif NATIVE_LINE.match(line):
                native.append(line.rstrip("\n"))
            elif native and not ANNC_LINE.match(line):
                pending.append(line)
                native.append(line.rstrip("\n"))
            else:
                _say("".join(pending) + line)
                pending.clear()
        code = child.wait()
    except KeyboardInterrupt:
        try:
            code = child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            code = child.wait()
        return code if code in ANNC_EXITS else 130
    if code in ANNC_EXITS:
        _say("".join(pending))
        return code
    print(why_it_ended(code, native, process_id), file=sys.stderr)
    return 1


def _say(text: str) -> None:
    if text:
        sys.stderr.write(text)
        sys.stderr.flush()


def why_it_ended(code: int, native: Sequence[str], process_id: int | None) -> str:
    """annc's one line for a distributed process that native code ended."""
    me = "this process" if process_id is None else f"process {process_id}"
    how = (f"signal {signal.Signals(-code).name}" if code < 0 and -code in
           signal.Signals._value2member_map_ else f"exit status {code}")
    text = "\n".join(native) + "\n"
    named = set()
    for task, listed in TASKS.findall(text):
        named |= {int(task)} if task else {int(n) for n in listed.split()}
    others = sorted(named - {process_id})
    told = any(words in text.lower() for words in
               ("coordination service", "distributed service", "heartbeat"))
    if told or others:
        if others:
            who = ", ".join(f"process {index}" for index in others)
            cause = f"{who} stopped answering (it died, or its host did)"
        else:
            cause = "another process, or the coordinator (process 0), stopped answering"
        return (f"annc: distributed run abandoned: {cause}; JAX's coordination service "
                f"ended {me} ({how}). Each process's own output says what it was doing.")
    last = _plain(native[-1]) if native else "no message"
    return f"annc: distributed run abandoned: {me} ended with {how}: {last}"


def _plain(line: str) -> str:
    """A native log line without its glog prefix, at most 300 characters."""
    text = re.sub(r"^[EFWI]\d{4} [\d:.]+\s+\d+\s+\S+\]\s*", "", line.strip())
    return text if len(text) <= 300 else text[:297] + "..."
