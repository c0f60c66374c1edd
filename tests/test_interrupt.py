"""Ctrl-C at any moment ends `annc` with exit status 130 and one line, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys


def test_importing_annc_is_light() -> None:
    """The console script imports `annc.cli` before any handler can run, so the
    package must not import the compiler (JAX, xDSL) until it is used."""
    code = ("import sys, annc.cli; heavy = [m for m in ('jax', 'xdsl', 'lark', "
            "'annc.compiler') if m in sys.modules]; print(heavy)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


INTERRUPTED_WHILE_IMPORTING = """
import builtins, os, signal, sys
from annc import cli

real_import = builtins.__import__

def import_then_interrupt(name, *args, **kwargs):
    module = real_import(name, *args, **kwargs)
    if name.startswith("xdsl") and not getattr(builtins, "interrupted", False):
        builtins.interrupted = True
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C, in the middle of annc's imports
    return module

builtins.__import__ = import_then_interrupt
sys.exit(cli.main(["run", sys.argv[1]]))
"""


def test_ctrl_c_while_annc_is_still_importing_exits_130_without_a_traceback(tmp_path):
    """The signal is sent from inside the first import of xDSL, so it lands in annc's
    imports every time (no sleeping and hoping)."""
    program = tmp_path / "p.ann"
    program.write_text("input A : f64[4, 4]\nB = matmul(A, A)\noutput B\n")
    env = {**os.environ, "ANNC_HOME": str(tmp_path / "home")}
    env.pop("ANNC_DEBUG", None)
    done = subprocess.run([sys.executable, "-c", INTERRUPTED_WHILE_IMPORTING, str(program)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 130, done.stderr
    assert "Traceback" not in done.stderr and done.stderr.strip() == "annc: interrupted"


def test_annc_cli_main_turns_an_interrupt_while_building_the_parser_into_130(monkeypatch,
                                                                          capsys):
    from annc import cli

    def interrupted(argv: object = None) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupted)
    assert cli.main(["devices"]) == 130
    assert capsys.readouterr().err.strip() == "annc: interrupted"
