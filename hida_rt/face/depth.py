"""Depth maps like the HIDA authors' 3DDFA renders, from the MediaPipe face mesh.

Grey uint8, bright = near, 0 = background; only the face (mesh) region is
non-zero. The mesh's 852 triangles are drawn far-to-near into a triangle-id
map (a painter's z-buffer: on a face seen from the front only the nose and
cheek silhouettes overlap, and there the nearer triangle wins), then each
covered pixel takes the z of its triangle's plane. The mesh is open at the
eyes and mouth, so those holes inside the face outline are inpainted.
"""
from __future__ import annotations

import numpy as np

from ._deps import require_cv2
from .mesh_topology import N_MESH_POINTS, face_oval_loop, tessellation_triangles

_SUBPIXEL_BITS = 4  # cv2 fixed-point vertices: triangles keep sub-pixel positions


def _plane_coefficients(tri_xyz: np.ndarray) -> np.ndarray:
    """(T, 3) coefficients a, b, c of z = a·x + b·y + c through each triangle."""
    p0, p1, p2 = tri_xyz[:, 0], tri_xyz[:, 1], tri_xyz[:, 2]
    e1, e2 = p1 - p0, p2 - p0
    den = e1[:, 0] * e2[:, 1] - e2[:, 0] * e1[:, 1]
    flat = np.abs(den) < 1e-9  # edge-on triangles cover no pixel centres; give them their mean z
    den = np.where(flat, 1.0, den)
    a = np.where(flat, 0.0, (e1[:, 2] * e2[:, 1] - e2[:, 2] * e1[:, 1]) / den)
    b = np.where(flat, 0.0, (e1[:, 0] * e2[:, 2] - e2[:, 0] * e1[:, 2]) / den)
    c = np.where(flat, tri_xyz[:, :, 2].mean(axis=1), p0[:, 2] - a * p0[:, 0] - b * p0[:, 1])
    return np.stack([a, b, c], axis=1)


def render_depth(points: np.ndarray, size: int = 256) -> np.ndarray:
    """Render the depth map of a face mesh already in output pixel coordinates.

    points: (468 or 478, 3) landmarks, x and y in pixels of the size×size
    output, z in MediaPipe's convention (smaller = nearer, same units as x).
    The nearest mesh point maps to 255 and the farthest to 1, as in the
    authors' maps, so the result does not depend on the face's scale.
    """
    cv2 = require_cv2()
    pts = np.asarray(points, dtype=np.float64)[:N_MESH_POINTS]
    tris = tessellation_triangles()
    tri_xyz = pts[tris]
    z_near, z_far = pts[:, 2].min(), pts[:, 2].max()

    ids = np.zeros((size, size), np.int32)  # triangle index + 1, 0 = not covered
    fixed = np.round(tri_xyz[:, :, :2] * (1 << _SUBPIXEL_BITS)).astype(np.int32)
    far_to_near = np.argsort(-tri_xyz[:, :, 2].mean(axis=1))  # nearer triangles overwrite farther ones
    for polygon, tri_id in zip(fixed[far_to_near], (far_to_near + 1).tolist()):
        cv2.fillConvexPoly(ids, polygon, tri_id, cv2.LINE_8, _SUBPIXEL_BITS)

    ys, xs = np.nonzero(ids)
    coef = _plane_coefficients(tri_xyz)[ids[ys, xs] - 1]
    z = coef[:, 0] * xs + coef[:, 1] * ys + coef[:, 2]
    grey = np.zeros((size, size), np.uint8)
    span = max(z_far - z_near, 1e-9)
    grey[ys, xs] = np.clip(np.rint(1 + 254 * (z_far - z) / span), 1, 255).astype(np.uint8)

    outline = np.zeros((size, size), np.uint8)
    oval = np.round(pts[face_oval_loop(), :2] * (1 << _SUBPIXEL_BITS)).astype(np.int32)
    cv2.fillPoly(outline, [oval], 255, cv2.LINE_8, _SUBPIXEL_BITS)
    holes = ((outline > 0) & (ids == 0)).astype(np.uint8)
    if holes.any():
        grey = cv2.inpaint(grey, holes, 3, cv2.INPAINT_TELEA)
        grey[(ids == 0) & (holes == 0)] = 0  # inpainting may bleed past the face; background stays 0
    return grey
