"""Index tables of MediaPipe's 478-point face mesh: triangles, outline, eye corners."""
from __future__ import annotations

import ast
import functools
import inspect

import numpy as np

from ._deps import require_mediapipe

N_MESH_POINTS = 468  # the tessellated surface; 468..477 are the iris points of refine_landmarks

# Eye centres are taken as the midpoint of the two eye corners, not the iris:
# the corners do not move with gaze, so the alignment stays put when the eyes
# look around. Indices are the subject's right eye (image left on a frontal
# face) then the subject's left eye.
RIGHT_EYE_CORNERS = (33, 133)
LEFT_EYE_CORNERS = (362, 263)


def _tuple_literal(node: ast.expr) -> tuple[int, int]:
    return tuple(int(c.value) for c in node.elts)  # type: ignore[attr-defined]


@functools.lru_cache(maxsize=None)
def _edge_lists() -> dict[str, list[tuple[int, int]]]:
    """Edge lists of face_mesh_connections.py in source order.

    The module exposes them as frozensets, which lose the order; the source
    lists FACEMESH_TESSELATION as consecutive (a,b),(b,c),(c,a) triples, one
    per triangle, so the order is read back from the file itself.
    """
    require_mediapipe()
    from mediapipe.python.solutions import face_mesh_connections

    edges = {}
    for node in ast.parse(inspect.getsource(face_mesh_connections)).body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and node.value.args:
            literal = node.value.args[0]
            if isinstance(literal, ast.List):
                edges[node.targets[0].id] = [_tuple_literal(e) for e in literal.elts]
    return edges


@functools.lru_cache(maxsize=None)
def tessellation_triangles() -> np.ndarray:
    """The 852 triangles of the face mesh as an (852, 3) int32 array of point indices."""
    edges = np.asarray(_edge_lists()["FACEMESH_TESSELATION"], dtype=np.int32)
    triples = edges.reshape(-1, 3, 2)
    closed = (triples[:, 0, 1] == triples[:, 1, 0]) & (triples[:, 1, 1] == triples[:, 2, 0]) & (
        triples[:, 2, 1] == triples[:, 0, 0]
    )
    if not closed.all() or len(triples) != 852:
        raise RuntimeError("face_mesh_connections.py no longer lists its tessellation as triangles")
    return np.ascontiguousarray(triples[:, :, 0])


@functools.lru_cache(maxsize=None)
def face_oval_loop() -> np.ndarray:
    """Point indices of the face outline, in order around the face."""
    successor = dict(_edge_lists()["FACEMESH_FACE_OVAL"])
    start = next(iter(successor))
    loop = [start]
    while successor[loop[-1]] != start:
        loop.append(successor[loop[-1]])
    return np.asarray(loop, dtype=np.int32)
