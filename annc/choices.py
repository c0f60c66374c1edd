"""Which choices of the programs run last a change of the models moved.

`calibrate --quick` selects the variants of the programs run last on this machine
(their sources are kept by `annc.history`) before it adapts the models and again
after, and says which ops and regions now run another variant or on another device.
Selection alone, nothing runs; a program that no longer compiles here is left out.
"""

from dataclasses import dataclass

from annc.compiler import compile_program
from annc.dsl.errors import AnncError
from annc.hardware.variants.regions.catalogue import OPS
from annc.history import ProgramSource, recent_programs
from annc.passes.candidates import Candidate

Choices = dict[str, str]
"""What was chosen (`#1 conv2d at heat.ann:16:25`) -> how it runs (`numpy on cpu`)."""


@dataclass(frozen=True)
class Chosen:
    """A program and what selection chose for it."""

    source: ProgramSource
    choices: Choices


def recent_choices() -> list[Chosen]:
    """What selection chooses now for each program run last here, the most recent first."""
    found = []
    for source in recent_programs():
        choices = choices_of(source)
        if choices is not None:
            found.append(Chosen(source, choices))
    return found


def choices_of(source: ProgramSource) -> Choices | None:
    """Each op's and region's choice for the program, or None where it no longer
    compiles (or selects) here."""
    try:
        plan = compile_program(source.text, source.filename, source.params, source.targets,
                               "selected", measure="never", record=False).selection
    except AnncError:
        return None
    choices = {f"#{op.site.index} {op.site.kernel} at {op.site.loc}": _how(op.chosen)
               for op in plan.ops if op.chosen is not None}
    choices |= {f"region {r.index} ({r.kind}) at {r.loc}": _how(r.chosen)
                for r in plan.regions if r.chosen is not None}
    return choices


def _how(candidate: Candidate) -> str:
    """`numpy on cpu`; a region that runs its ops one by one: `op by op`."""
    return "op by op" if candidate.variant == OPS else f"{candidate.variant} on {candidate.device}"


def moved(before: list[Chosen]) -> list[str]:
    """Lines saying which choices of the programs differ now from `before`: each program
    whose choices moved, then each move; one line where none did."""
    if not before:
        return ["choices: no program has run on this machine yet, so none to compare"]
    programs = ("the program" if len(before) == 1 else f"the {len(before)} programs") + \
        " run last on this machine"
    lines = []
    for chosen in before:
        now = choices_of(chosen.source) or {}
        changes = [f"    {what}: {was} → {now[what]}" for what, was in chosen.choices.items()
                   if what in now and now[what] != was]
        if changes:
            lines += [f"  {_program(chosen.source)}", *changes]
    if not lines:
        return [f"choices: none moved in {programs}"]
    return [f"choices that moved in {programs}:", *lines]


def _program(source: ProgramSource) -> str:
    """`heat.ann -D N=512 --target cpu`: the program as a command line names it."""
    words = [source.filename, *(f"-D {k}={v}" for k, v in source.params.items())]
    if source.targets is not None:
        words.append(f"--target {','.join(source.targets)}")
    return " ".join(words)
