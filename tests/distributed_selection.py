"""Run by `tests/test_distributed.py` as each process of a two-process run: joins it
(`annc.distributed.join`), and process 0 selects heat's plan on the mesh of both
processes' devices and prints, as the last line of its output, heat's loop's sharded
candidate as JSON (`variant`, `communication`, `compute_s`, `communication_s`).

    python tests/distributed_selection.py HOST:PORT PROCESSES PROCESS_ID PROGRAM
"""

from __future__ import annotations

import json
import sys

from annc import distributed
from annc.compiler import compile_program, read_source


def main() -> int:
    coordinator, processes, index, path = sys.argv[1:5]
    with distributed.quiet_stdout():
        process, _ = distributed.join(distributed.Cluster(coordinator, int(processes),
                                                          int(index), 60))
        if process != 0:
            return 0
        plan = compile_program(read_source(path), path, {"N": 256, "STEPS": 10}, None,
                               "selected", "never", record=False).selection
    loop = plan.regions[0]
    sharded = next(c for c in loop.candidates if c.variant.startswith("jax.sharded"))
    print(json.dumps({"variant": sharded.variant, "communication": sharded.communication,
                      "compute_s": sharded.compute_s,
                      "communication_s": sharded.communication_s}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
