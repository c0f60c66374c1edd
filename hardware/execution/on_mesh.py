"""Running a sharded region (`jax.sharded`) so that its values stay on the mesh.

A sharded region's step reads each input as it is held (`Resident.parts`): a value a
sharded region left split over the mesh goes on as it is, an input of a distributed
run that gives its rows on demand gives this process's rows only, and a whole value
is split on the way in. Its outputs stay split (`ShardedValue`, kept under
`residency.SHARDS`): the next sharded region, or the next call of a sharded loop,
takes them as they are, and only a step that needs one whole (an op run op by op,
the program's outputs) gathers it (`Resident.host`). A sharded loop runs in whole
calls (`loops.WholeCalls`): every process must make the same calls.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from annc.hardware.devices.device import Device
from annc.hardware.execution.loops import Advance, Source, WholeCalls, run_chunks
from annc.hardware.execution.residency import Resident
from annc.hardware.execution.steps import Env


def mesh_region_runner(region: Any, sources: Sequence[Source], carried: int | None,
                       trips: int, results: Sequence[tuple[int, int, tuple[int, ...]]],
                       devices: Mapping[str, Device], advance: Advance | None
                       ) -> Callable[[Env], None]:
    """Runs a built sharded region (`sharded_region.ShardedRegion`, through its `keep`)
    on the environment's values: a loop (`carried` not None: its first `carried`
    sources are the initial carried values) runs `trips` trips in whole calls;
    `results` are (slot, which output, shape) triples."""
    keep = getattr(region, "func", region).keep  # a loop's is a partial with its trips
    fixed = tuple(sources)

    def run(env: Env) -> None:
        values = [env[s].parts(devices) if isinstance(s, int) else s for s in fixed]
        if carried is None:
            outputs = keep(*values)
        else:
            outputs = run_chunks(keep, values[:carried], values[carried:], trips,
                                 WholeCalls(), advance)
        for slot, which, _ in results:
            env[slot] = Resident.of(outputs[which])

    return run
