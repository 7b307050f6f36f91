"""Mapping a 256×256 result back into the frame: inverse warp + feathered blend, touching only the face."""
import numpy as np
from testutils.synthetic_video import background, place

from hida_rt.face import paste_back


def test_pasting_the_aligned_photo_back_restores_the_frame(still_front_end, sample_faces):
    frame = background(480, 640)
    place(frame, sample_faces["astronaut"][0], 260, 300, 220, 15)
    face = still_front_end.process(frame)[0]
    out = paste_back(frame, face.photo, face)
    assert out is not frame and out.shape == frame.shape
    # the crop was cut from this frame, so putting it back changes little (resampling twice)
    inside = (slice(170, 270), slice(250, 350))
    assert np.abs(out[inside].astype(int) - frame[inside].astype(int)).mean() < 4


def test_only_the_face_square_is_touched_with_a_soft_edge(still_front_end, sample_faces):
    frame = background(480, 640)
    place(frame, sample_faces["astronaut"][0], 200, 420, 250, 0)
    face = still_front_end.process(frame)[0]
    black = np.zeros((256, 256), np.uint8)
    out = paste_back(frame, black, face)
    inverse = np.linalg.inv(np.vstack([face.matrix, [0, 0, 1]]))[:2]
    centre = (inverse[:, :2] @ [128, 128] + inverse[:, 2]).round().astype(int)
    assert out[centre[1], centre[0]].max() == 0  # the middle of the square is all sketch
    corners = np.array([[0, 0], [256, 0], [0, 256], [256, 256]]) @ inverse[:, :2].T + inverse[:, 2]
    x0, y0 = np.floor(corners.min(axis=0)).astype(int)
    x1, y1 = np.ceil(corners.max(axis=0)).astype(int)
    outside = np.ones(frame.shape[:2], bool)
    outside[y0:y1, x0:x1] = False
    assert np.array_equal(out[outside], frame[outside])  # nothing else changes
    # the edge is feathered: along a row through the centre the blend ramps over several pixels
    row = out[centre[1], x0:centre[0], 0].astype(int)
    partial = ((row > 0) & (row < frame[0, 0, 0])).sum()
    assert partial >= 5


def test_out_argument_and_faces_off_the_frame(still_front_end, sample_faces):
    frame = background(300, 300)
    place(frame, sample_faces["grace_hopper"][0], 260, 120, 150, 0)  # partly outside on the left
    face = still_front_end.process(frame)[0]
    buf = frame.copy()
    result = paste_back(buf, np.full((256, 256), 7, np.uint8), face, out=buf)
    assert result is buf and (buf != frame).any()
    # a face mapped entirely outside the frame leaves it alone
    class Away:
        matrix = face.matrix + np.array([[0, 0, 5000], [0, 0, 0]])
    assert np.array_equal(paste_back(frame, np.zeros((256, 256), np.uint8), Away()), frame)
