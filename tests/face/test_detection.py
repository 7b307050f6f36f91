"""Finding every face of a group photo, and none in real photos without faces.

Group-like frames are composed from real portraits at known places and sizes
(tests/testutils/real_photos.py): seven faces from 150 down to 40 px high at
1080p, on a real photo.
"""
import numpy as np
import pytest
from PIL import Image
from testutils.real_photos import face_centre_and_height, group_photo, match

from hida_rt.face.detection import TILE_OVERLAP, tile_grid


@pytest.fixture(scope="module")
def group_front_end(mediapipe):
    from hida_rt.face import FaceFrontEnd

    with FaceFrontEnd(max_faces=8) as fe:
        yield fe


@pytest.mark.parametrize("width, height", [(1920, 1080), (1280, 720)])
def test_every_face_of_a_group_photo_is_found(group_front_end, width, height):
    frame, placed = group_photo(width, height)
    faces = group_front_end.process(frame)
    assert len(faces) == len(placed) == 7
    hits = match([f.landmarks for f in faces], placed)
    assert None not in hits and len(set(hits)) == 7, hits  # each placed face found once
    for face, i in zip(placed, hits):
        _, _, h = face_centre_and_height(faces[i].landmarks)
        assert h == pytest.approx(face.height, rel=0.2), (face, h)  # the mesh spans the real face
    heights = [face_centre_and_height(f.landmarks)[2] for f in faces]
    assert heights == sorted(heights, reverse=True)  # largest first
    assert min(heights) < 45 * height / 1080  # down to ~40 px at 1080p


def test_max_faces_keeps_the_largest(mediapipe):
    from hida_rt.face import FaceFrontEnd

    frame, placed = group_photo(1280, 720)
    with FaceFrontEnd(max_faces=3) as fe:
        faces = fe.process(frame)
    assert match([f.landmarks for f in faces], placed[:3]) == [0, 1, 2]  # the layout lists them largest first


@pytest.mark.parametrize("name, size", [
    ("chelsea", None), ("rocket", (1920, 1080)), ("cell", None), ("colorwheel", None), ("coins", (1280, 720)),
], ids=lambda v: v if isinstance(v, str) else "")
def test_no_face_is_found_in_real_photos_without_faces(group_front_end, name, size):
    # The extra passes (tiles) see many more face-like things (a logo, a cat, a round cell, a
    # colour wheel): each must be rejected when looked at again.
    data = pytest.importorskip("skimage.data", reason="scikit-image (bundled real photos) is missing")
    im = getattr(data, name)()
    im = np.repeat(im[:, :, None], 3, axis=2) if im.ndim == 2 else np.ascontiguousarray(im[:, :, :3])
    if size:
        im = np.array(Image.fromarray(im).resize(size, Image.BILINEAR))
    assert group_front_end.process(im) == []


def test_a_single_portrait_is_one_face(group_front_end):
    data = pytest.importorskip("skimage.data", reason="scikit-image (bundled real photos) is missing")
    faces = group_front_end.process(data.astronaut())
    assert len(faces) == 1
    x, y, h = face_centre_and_height(faces[0].landmarks)
    assert abs(x - 224) < 10 and abs(y - 123) < 10 and h == pytest.approx(107, rel=0.1)


@pytest.mark.parametrize("width, height", [(1920, 1080), (1280, 720), (4000, 3000), (640, 480)])
def test_tiles_cover_the_frame_with_overlap(width, height):
    tiles = tile_grid(width, height)
    covered = np.zeros((height, width), bool)
    for x, y, side in tiles:
        assert 0 <= x and x + side <= width and 0 <= y and y + side <= height
        covered[y:y + side, x:x + side] = True
    assert covered.all()
    side = tiles[0][2]
    xs = sorted({x for x, _, _ in tiles})
    steps = np.diff(xs)
    assert (steps <= side * (1 - TILE_OVERLAP) + 1).all()  # neighbours overlap by at least TILE_OVERLAP


def test_a_small_frame_has_no_tiles():
    assert tile_grid(320, 240) == []
