"""Drawing a run's inputs from a seed: this checkout's `rundata.generated_inputs` against
another checkout's, side by side.

    python benchmarks/input_generation.py --before PATH [--n 4096] [--repeats 15]

Draws one n × n input, f64 and f32, with each version's `generated_inputs` (the other
checkout's `hardware/execution/rundata.py` loaded beside this one, on this checkout's
annc), alternating, and gives the medians; checks that both draw the same numbers.
Prints its table (a question asked once a change to drawing: no result file).
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]


def _module(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location("rundata_before", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["rundata_before"] = module
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, required=True)
    parser.add_argument("--n", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    from annc.hardware.execution import rundata as after

    before = _module(args.before / "hardware" / "execution" / "rundata.py")
    print("| dtype | before (median) | after (median) | after / before |\n|---|---:|---:|---:|")
    for dtype in ("float64", "float32"):
        versions = {"before": (before, [before.InputSpec("T", np.dtype(dtype), (args.n,) * 2)]),
                    "after": (after, [after.InputSpec("T", np.dtype(dtype), (args.n,) * 2)])}
        drawn = [module.generated_inputs(specs, 3)[0] for module, specs in versions.values()]
        assert np.array_equal(*drawn), "the two versions draw different numbers"
        times: dict[str, list[float]] = {name: [] for name in versions}
        for _ in range(args.repeats):
            for name, (module, specs) in versions.items():
                start = time.perf_counter()
                module.generated_inputs(specs, 3)
                times[name].append(time.perf_counter() - start)
        b, a = (statistics.median(times[name]) for name in ("before", "after"))
        print(f"| {dtype} | {b * 1e3:.1f} ms | {a * 1e3:.1f} ms | {a / b:.2f} |")


if __name__ == "__main__":
    main()
