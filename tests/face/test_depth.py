"""Depth maps rendered from the mesh, checked against the authors'-style maps shipped with the samples."""
import numpy as np
import pytest

from hida_rt.face.template import transform_points

NOSE_TIP, RIGHT_CHEEK, LEFT_CHEEK = 1, 205, 425  # MediaPipe mesh indices
EYE_CENTRES = ((82, 102), (174, 102))  # template eyes (x, y), rounded


@pytest.fixture(scope="module")
def rendered(still_front_end, sample_faces):
    return {name: still_front_end.process(photo)[0] for name, (photo, _) in sample_faces.items()}


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_depth_matches_the_shipped_map(rendered, sample_faces, name):
    mine = rendered[name].depth.astype(float)
    theirs = sample_faces[name][1].astype(float)
    face_mine, face_theirs = mine > 0, theirs > 0
    iou = (face_mine & face_theirs).sum() / (face_mine | face_theirs).sum()
    assert iou > 0.9, iou
    both = face_mine & face_theirs
    assert np.corrcoef(mine[both], theirs[both])[0, 1] > 0.95
    assert np.abs(mine[both] - theirs[both]).mean() < 12  # same normalisation: grey levels agree, not just shape


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_depth_is_a_face_on_black(rendered, name):
    face = rendered[name]
    d = face.depth
    assert (d > 0).mean() > 0.4  # the face fills about half the aligned crop
    assert d[:16].max() == 0 and d[:, :12].max() == 0 and d[:, -12:].max() == 0  # above and beside it: background
    assert d.max() == 255 and d[d > 0].min() >= 1  # nearest point 255, the face never reads as background
    for x, y in EYE_CENTRES:  # the mesh is open at the eyes; the holes are filled
        assert d[y, x] > 60
    lm = transform_points(face.matrix, face.landmarks)
    at = lambda i: int(d[int(round(lm[i, 1])), int(round(lm[i, 0]))])  # noqa: E731
    assert at(NOSE_TIP) > 240  # bright = near
    assert at(NOSE_TIP) > at(RIGHT_CHEEK) + 40 and at(NOSE_TIP) > at(LEFT_CHEEK) + 40
    mouth = lm[[13, 14], :2].mean(axis=0).round().astype(int)  # between the lips: filled too
    assert d[mouth[1], mouth[0]] > 60


def test_depth_is_scale_free(mediapipe, rendered):
    from hida_rt.face.depth import render_depth

    face = rendered["astronaut"]
    lm = transform_points(face.matrix, face.landmarks)
    deeper = lm.copy()
    deeper[:, 2] = deeper[:, 2] * 3 + 50  # z in other units / another origin: same picture
    assert np.abs(render_depth(deeper).astype(int) - render_depth(lm).astype(int)).max() <= 1
