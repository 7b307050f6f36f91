"""The face extra is optional: hida_rt imports without it, and using it says how to install it."""
import subprocess
import sys

import pytest

from hida_rt.errors import MissingDependency


def test_import_needs_no_mediapipe_nor_av():
    code = ("import sys; sys.modules['mediapipe'] = None; sys.modules['av'] = None; sys.modules['cv2'] = None\n"
            "import hida_rt, hida_rt.face, hida_rt.video, hida_rt.video.io, hida_rt.video.modes\n"
            "print('ok')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


@pytest.mark.parametrize("blocked", ["mediapipe", "cv2"])
def test_missing_mediapipe_is_one_line_with_the_pip_commands(monkeypatch, blocked):
    from hida_rt.face import FaceFrontEnd

    monkeypatch.setitem(sys.modules, blocked, None)  # import of it now raises ImportError
    with pytest.raises(MissingDependency) as info:
        FaceFrontEnd()
    msg = str(info.value)
    assert "\n" not in msg
    assert "pip install --no-deps mediapipe==0.10.21" in msg
    assert '"opencv-python-headless<5"' in msg and '"protobuf>=6.31.1,<7"' in msg


def test_missing_av_says_how_to_install(monkeypatch, tmp_path):
    from hida_rt.video.io import FileReader

    monkeypatch.setitem(sys.modules, "av", None)
    with pytest.raises(MissingDependency, match=r"pip install av==18\.1\.0"):
        FileReader(tmp_path / "x.mp4")
