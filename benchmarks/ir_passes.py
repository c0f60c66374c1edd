"""What the IR's passes cost and save: `cse` on a program with duplicate ops, the
dialect's canonicalization and selection per op.

    .venv/bin/python benchmarks/ir_passes.py [--ops 1000] [--repeats 5]

- cse: the kernel ops of `DUPLICATES` after `fuse-regions`, without and with
  `--passes cse`;
- canonicalize-kernel: seconds per op on `benchmarks/overhead.py`'s generated program
  of `--ops` ops, lowered (median of `--repeats`);
- selection: (compile to `selected` - compile to `ir`) per op on the same program, warm,
  median of `--repeats` after a warm-up (as `benchmarks/overhead.py`'s warm figure).
Prints a Markdown table; writes nothing.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
from pathlib import Path

from annc.compiler import compile_program
from annc.dsl import dialect
from annc.dsl.canonicalization import canonicalize

DUPLICATES = """\
input A : f64[512, 512]
input v : f64[512]
y = matvec(A, v)
z = matvec(A, v)
w = matvec(A, v) + matvec(A, v)
s = dot(y, z) + dot(w, w)
output s
"""


def _generated(n_ops: int) -> str:
    path = Path(__file__).resolve().parent / "overhead.py"
    spec = importlib.util.spec_from_file_location("overhead", path)
    assert spec is not None and spec.loader is not None
    overhead = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(overhead)
    text: str = overhead.program(n_ops)
    return text


def _kernel_ops(passes: str) -> int:
    module = compile_program(DUPLICATES, "dup.ann", emit="fused", passes=passes).ir
    return sum(isinstance(op, dialect.KernelOp) for op in module.walk())


def _median_seconds(action: object, repeats: int) -> float:
    assert callable(action)
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    text = _generated(args.ops)
    canonical = []
    for _ in range(args.repeats):
        module = compile_program(text, emit="ir", targets=["cpu"]).ir
        start = time.perf_counter()
        canonicalize(module)
        canonical.append(time.perf_counter() - start)

    def compiled(emit: str) -> float:
        return _median_seconds(lambda: compile_program(
            text, emit=emit, targets=["cpu"], measure="never", record=False), args.repeats)

    selection = (compiled("selected") - compiled("ir")) / args.ops
    print("| what | figure |\n|---|---|")
    print(f"| kernel ops of the duplicates program, fused: without cse, with `--passes cse` "
          f"| {_kernel_ops('')} → {_kernel_ops('cse')} |")
    print(f"| canonicalize-kernel per op ({args.ops} ops) "
          f"| {statistics.median(canonical) / args.ops * 1e6:.1f} µs |")
    print(f"| selection per op, warm ({args.ops} ops) | {selection * 1e6:.0f} µs |")


if __name__ == "__main__":
    main()
