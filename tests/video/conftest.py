"""Fixtures for the video tests: PyAV (skip without it) and small synthetic clips."""
from __future__ import annotations

import pytest
from testutils.synthetic_video import moving_face_frames, write_clip


@pytest.fixture(scope="session")
def av():
    return pytest.importorskip("av", reason="the video extra (PyAV) is not installed")


@pytest.fixture(scope="session")
def face_clip(av, tmp_path_factory):
    """8 frames, 320×240 at 25 fps, the astronaut drifting and zooming, with an AAC tone."""
    return write_clip(tmp_path_factory.mktemp("clips") / "face.mp4", moving_face_frames(8, 320, 240))
