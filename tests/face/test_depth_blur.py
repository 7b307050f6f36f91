"""The depth map is blurred (5×5 Gaussian, sigma 0.2) before the network, as in the authors'
test script: checked against OpenCV's GaussianBlur, at the one place depth becomes a tensor
(hida_rt.images.depth_to_tensor) and on every path into the network: the sketch CLI with a
depth map (and with an estimated one, on a whole run: test_sketch_without_depth.py), the
video's face mode, the service (uploads and live frames)."""
import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from testutils.depth_blur import close_to_blurred
from testutils.synthetic_video import background, place, sample_depth, sample_photo

from hida_rt import images

pytest.importorskip("cv2", reason="OpenCV (the face extra) is the independent reference here")


@pytest.mark.parametrize("shape, size", [((256, 256), (256, 256)), ((200, 180), (256, 256)), ((256, 256), (512, 512))])
def test_depth_to_tensor_blurs_like_opencv(shape, size):
    depth = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    t = images.depth_to_tensor(depth, size)
    assert t.shape == (1, 1, *size) and t.dtype == torch.float32 and t.is_contiguous()
    assert close_to_blurred(t, depth, size)


def test_a_flat_depth_map_stays_flat():
    assert torch.count_nonzero(images.depth_to_tensor(np.zeros((256, 256), np.uint8))) == 0
    assert torch.all(images.depth_to_tensor(np.full((256, 256), 255, np.uint8)) == 1.0)


def test_sketch_cli_with_a_depth_map(sample_pair):
    # What the CLI feeds the network for a photo + depth pair (its own loader; the estimated-depth
    # path is checked on a whole CLI run in test_sketch_without_depth.py).
    from hida_rt.sketch import Job, load_pair

    photo, depth, _ = load_pair(Job(sample_pair[0], sample_pair[1], Path("unused.png")), 256)
    assert photo.shape == (1, 3, 256, 256) and close_to_blurred(depth, sample_depth("astronaut"))


def test_video_face_mode(mediapipe):
    from hida_rt.video.io import Frame
    from hida_rt.video.modes import FaceMode

    frame = background(240, 320)
    place(frame, sample_photo(), 150, 160, 120)
    mode = FaceMode()
    work = mode.prepare(Frame(0, frame, 0.0))
    mode.close()
    assert len(work.depths) == 1 and close_to_blurred(work.depths[0], work.context[0].depth)


def test_service_uploads_and_live_frames(mediapipe, sample_pair):
    from hida_rt.serve.core import SketchService, StreamSession
    from hida_rt.serve.settings import Settings
    from hida_rt.styles import one_hot

    def never():
        raise AssertionError("the backend is not needed here")

    service = SketchService(never, Settings())
    job = service.prepare(sample_pair[0].read_bytes(), sample_pair[1].read_bytes(), one_hot(2))
    assert close_to_blurred(job.net.depth, sample_depth("astronaut"))

    frame = background(240, 320)
    place(frame, sample_photo(), 150, 160, 120)
    jpeg = io.BytesIO()
    Image.fromarray(frame).save(jpeg, format="JPEG", quality=95)
    session = StreamSession(Settings())
    try:
        plan = session.prepare(jpeg.getvalue(), one_hot(2))
    finally:
        session.close()
    assert len(plan.inputs) == 1 and close_to_blurred(plan.inputs[0].depth, plan.work.context[0].depth)
