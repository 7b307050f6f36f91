"""Detection and alignment on the sample faces, as given and placed in larger frames."""
import numpy as np
import pytest
from testutils.synthetic_video import background, place

from hida_rt.face.landmarks import eye_centres
from hida_rt.face.template import EYES, transform_points


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_sample_faces_are_already_aligned(still_front_end, sample_faces, name):
    photo, _ = sample_faces[name]
    faces = still_front_end.process(photo)
    assert len(faces) == 1
    face = faces[0]
    assert face.photo.shape == (256, 256, 3) and face.photo.dtype == np.uint8
    assert face.depth.shape == (256, 256) and face.depth.dtype == np.uint8
    assert face.landmarks.shape == (478, 3)
    # The samples were cut with this template (from the full-size originals), so
    # re-aligning them is close to the identity: eyes found where the template has them.
    np.testing.assert_allclose(np.array(eye_centres(face.landmarks)), EYES, atol=3.0)
    np.testing.assert_allclose(face.matrix[:, :2], np.eye(2), atol=0.04)
    # and the aligned eyes sit exactly on the template
    np.testing.assert_allclose(transform_points(face.matrix, np.array(eye_centres(face.landmarks))), EYES, atol=1e-6)


@pytest.mark.parametrize("size, side, degrees", [((480, 640), 300, 20), ((720, 1280), 200, -12), ((1080, 1920), 240, 0)])
def test_face_in_a_larger_frame_is_cut_back_out(still_front_end, sample_faces, size, side, degrees):
    photo, _ = sample_faces["astronaut"]
    frame = background(*size)
    placed = place(frame, photo, side, size[1] * 0.6, size[0] * 0.45, degrees)
    faces = still_front_end.process(frame)
    assert len(faces) == 1
    face = faces[0]
    # aligned = matrix ∘ placement ≈ the identity on the sample, so the crop is the sample again
    composed = face.matrix[:, :2] @ placed[:, :2]
    np.testing.assert_allclose(composed, np.eye(2), atol=0.05)
    centre = slice(64, 192)  # inside the face, away from the frame background the border may show
    diff = np.abs(face.photo[centre, centre].astype(int) - photo[centre, centre].astype(int))
    assert diff.mean() < 12, diff.mean()


def test_two_faces_largest_first(still_front_end, sample_faces):
    frame = background(480, 800)
    place(frame, sample_faces["astronaut"][0], 200, 200, 240, 0)
    place(frame, sample_faces["grace_hopper"][0], 300, 560, 240, 0)
    faces = still_front_end.process(frame)  # max_faces=2
    assert len(faces) == 2
    xs = [transform_points(np.linalg.inv(np.vstack([f.matrix, [0, 0, 1]]))[:2], EYES).mean(axis=0)[0] for f in faces]
    assert xs[0] > 400 > xs[1]  # grace_hopper (larger, right) first


def test_max_faces_keeps_the_largest(mediapipe, sample_faces):
    from hida_rt.face import FaceFrontEnd

    frame = background(480, 800)
    place(frame, sample_faces["astronaut"][0], 300, 200, 240, 0)
    place(frame, sample_faces["grace_hopper"][0], 180, 600, 240, 0)
    with FaceFrontEnd(max_faces=1) as fe:
        faces = fe.process(frame)
    assert len(faces) == 1
    assert np.linalg.det(faces[0].matrix[:, :2]) ** 0.5 == pytest.approx(256 / 300, rel=0.08)


def test_the_original_photo_is_cut_like_the_shipped_sample(still_front_end, sample_faces):
    # grace_hopper_photo.png / _depth.png were made from this very file (see samples/README.md);
    # matplotlib comes with the face extra (MediaPipe imports it).
    import cv2
    cbook = pytest.importorskip("matplotlib.cbook", reason="matplotlib (part of the face extra) is missing")
    from PIL import Image

    wild = np.array(Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).convert("RGB"))
    assert wild.shape[:2] == (600, 512)
    face = still_front_end.process(wild)[0]
    photo, depth = sample_faces["grace_hopper"]
    grey = lambda im: cv2.cvtColor(im, cv2.COLOR_RGB2GRAY).astype(np.float32)  # noqa: E731
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 200, 1e-6)
    _, warp = cv2.findTransformECC(grey(photo), grey(face.photo), np.eye(2, 3, dtype=np.float32),
                                   cv2.MOTION_AFFINE, criteria, None, 5)
    # what is left between our crop and the authors' is landmark noise: ~1 % scale, a few pixels
    np.testing.assert_allclose(warp[:, :2], np.eye(2), atol=0.03)
    assert np.abs(warp[:, 2]).max() < 5
    mine, theirs = face.depth.astype(float), depth.astype(float)
    both = (mine > 0) & (theirs > 0)
    assert both.sum() / ((mine > 0) | (theirs > 0)).sum() > 0.93
    assert np.corrcoef(mine[both], theirs[both])[0, 1] > 0.95


def test_landmarks_read_in_bulk_equal_field_by_field(mediapipe):
    from mediapipe.framework.formats import landmark_pb2

    from hida_rt.face.landmarks import _landmark_array

    rng = np.random.default_rng(0)
    plain = landmark_pb2.NormalizedLandmarkList()
    for x, y, z in rng.normal(size=(478, 3)).astype(np.float32):
        plain.landmark.add(x=x, y=y, z=z)
    expected = np.array([(p.x, p.y, p.z) for p in plain.landmark])
    np.testing.assert_array_equal(_landmark_array(plain), expected)
    plain.landmark[3].visibility = 0.5  # another layout: read field by field, same answer
    np.testing.assert_array_equal(_landmark_array(plain), expected)
