"""Fresh tensor and node names for an onnx-graphsurgeon graph, shared by the graph passes and the FP16 pass."""
from __future__ import annotations

import onnx_graphsurgeon as gs


class FreshNames:
    """Names not yet taken in one graph: `names("x")` gives "x", then "x_2", "x_3", ..."""

    def __init__(self, graph: gs.Graph):
        self.taken = set(graph.tensors()) | {n.name for n in graph.nodes if n.name}

    def __call__(self, base: str) -> str:
        name, i = base, 1
        while name in self.taken:
            i += 1
            name = f"{base}_{i}"
        self.taken.add(name)
        return name
