"""Counts the import circles among annc's packages and names them.

A circle is a group of modules each of which reaches every other through imports
(a strongly connected group of grimp's import graph: imports inside functions and
under TYPE_CHECKING count). `lint-imports` refuses them (pyproject.toml's
`acyclic_siblings` contract); this prints how many there are, e.g. before a change.

    python scripts/import_circles.py
"""

from __future__ import annotations

import grimp

PACKAGES = ("annc",)


def circles(graph: grimp.ImportGraph) -> list[list[str]]:
    """The graph's strongly connected groups of more than one module (Tarjan's
    algorithm, iterative), each sorted."""
    imports = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(imports):
        if root in order:
            continue
        work = [(root, 0)]
        while work:
            module, next_edge = work.pop()
            if next_edge == 0:
                order[module] = low[module] = len(order)
                stack.append(module)
                on_stack.add(module)
            edges = imports[module]
            if next_edge < len(edges):
                work.append((module, next_edge + 1))
                target = edges[next_edge]
                if target not in order:
                    work.append((target, 0))
                elif target in on_stack:
                    low[module] = min(low[module], order[target])
                continue
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[module])
            if low[module] == order[module]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == module:
                        break
                if len(group) > 1:
                    found.append(sorted(group))
    return found


def main() -> None:
    found = circles(grimp.build_graph(*PACKAGES, cache_dir=None))
    print(f"{len(found)} import circles among {', '.join(PACKAGES)}")
    for group in found:
        print("  " + " <-> ".join(group))


if __name__ == "__main__":
    main()
