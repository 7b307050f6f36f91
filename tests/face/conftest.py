"""Fixtures for the face front end tests."""
from __future__ import annotations

import numpy as np
import pytest
from testutils.synthetic_video import sample_depth, sample_photo

NAMES = ("astronaut", "grace_hopper")


@pytest.fixture(scope="session")
def sample_faces() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """name -> (aligned 256×256 RGB photo, its shipped depth map)."""
    return {n: (sample_photo(n), sample_depth(n)) for n in NAMES}


@pytest.fixture(scope="session")
def mediapipe():
    return pytest.importorskip("mediapipe", reason="the face extra (MediaPipe 0.10.21) is not installed")


@pytest.fixture(scope="module")
def still_front_end(mediapipe):
    from hida_rt.face import FaceFrontEnd

    with FaceFrontEnd(max_faces=2) as fe:
        yield fe
