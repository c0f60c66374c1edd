"""Passes of one's own in annc's pipeline: `--passes` (and `compile_program(passes=)`).

The text is a pipeline in `xdsl-opt`'s syntax (`canonicalize,cse,my-pass{option=1}`).
Its passes are found where `xdsl-opt -p` finds them: xDSL's own, and those of every
installed package's `xdsl.universe` entry point (annc's own, `annc.universe`, among
them). A pass of one's own is registered there (see the docs' page for compiler
engineers), so annc and `xdsl-opt` both find it. The pipeline runs on the lowered,
canonicalized IR, before `fuse-regions` and selection; the IR it leaves must verify.
"""

from __future__ import annotations

from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import PassPipeline
from xdsl.universe import Universe
from xdsl.utils.exceptions import DiagnosticException, VerifyException

from annc.dsl.context import annc_context
from annc.dsl.errors import AnncError


def pipeline(text: str) -> PassPipeline:
    """The passes the text names, with their options; an AnncError names a bad one."""
    available = Universe.get_multiverse().all_passes
    try:
        return PassPipeline.parse_spec(available, text)
    except (ValueError, TypeError, DiagnosticException) as error:
        raise AnncError(f"--passes {text!r}: {error}") from None


def apply_passes(module: ModuleOp, text: str) -> None:
    """Runs the pipeline on the module in place; a pass that fails, or leaves IR that
    does not verify, is a plain error naming it."""
    if not text.strip():
        return
    passes = pipeline(text)
    context = annc_context()
    for step in passes.passes:
        try:
            step.apply(context, module)
            module.verify()
        except (VerifyException, DiagnosticException) as error:
            raise AnncError(f"--passes: after {step.name}: the IR does not verify: "
                            f"{error}") from None
        except Exception as error:  # a pass of one's own may fail any way it likes
            raise AnncError(f"--passes: {step.name} failed: {type(error).__name__}: "
                            f"{error}") from None
