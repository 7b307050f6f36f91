"""python -m hida_rt.video end to end: a real clip, the real eager backend, an H.264 file out;
and the failures: one line, non-zero exit, no output file."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from testutils.synthetic_video import WALL, probe, write_clip

from hida_rt.cli import run_cli

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def mediapipe():
    return pytest.importorskip("mediapipe", reason="the face extra (MediaPipe 0.10.21) is not installed")


def run_video(args, capfd):
    from hida_rt.video.__main__ import main

    code = run_cli(main, [str(a) for a in args], prog="hida_rt.video")
    out, err = capfd.readouterr()
    return code, out, err


def test_sketches_the_face_of_a_clip(mediapipe, face_clip, lightning_ckpt, tmp_path):
    out = tmp_path / "sketch.mp4"
    done = subprocess.run(
        [sys.executable, "-m", "hida_rt.video", face_clip, "-o", out, "--weights", lightning_ckpt,
         "--backend", "eager", "--device", "cpu", "--batch-size", "4", "--style", "0.2,0.3,0.5", "-q"],
        capture_output=True, text=True, timeout=300, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    assert done.stderr == "" and done.stdout == ""  # -q: nothing, not even MediaPipe's start-up chatter
    info = probe(out)
    assert info["codec"] == "h264" and (info["width"], info["height"]) == (320, 240)
    assert len(info["frames"]) == 8 and info["audio"] == ["aac"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sketch.mp4"]  # no temp file left beside it
    original = probe(face_clip)["frames"]
    for before, after in zip(original, info["frames"]):
        diff = np.abs(after.astype(int) - before.astype(int)).max(axis=2)
        assert diff[100:140, 140:180].mean() > 20  # the middle of the face is sketch now
        corners = np.concatenate([diff[:20, :20].ravel(), diff[-20:, -20:].ravel()])
        assert corners.mean() < 4  # the wall around it is untouched (up to H.264)


def test_whole_frame_mode_with_progress_and_summary(av, lightning_ckpt, tmp_path, capfd):
    clip = write_clip(tmp_path / "wall.mp4", [np.full((200, 300, 3), WALL, np.uint8)] * 3, audio=None)
    out = tmp_path / "whole.mkv"
    code, stdout, stderr = run_video([clip, "-o", out, "--weights", lightning_ckpt, "--backend", "eager",
                                      "--device", "cpu", "--whole-frame", "--max-frames", "2"], capfd)
    assert code == 0, stderr
    assert "2/2" in stderr and "frame/s" in stderr  # tqdm's live bar, its rate in frames per second
    assert stdout.startswith(f"wrote {out}: 2 frames 300x200, 2 sketched whole")
    assert "backend" in stdout and "encode" in stdout  # per-stage busy time
    info = probe(out)
    assert (info["width"], info["height"], len(info["frames"]), info["audio"]) == (300, 200, 2, [])
    frame = info["frames"][1].astype(int)
    assert np.abs(frame[..., 0] - frame[..., 1]).max() < 8  # grey sketch over the whole frame
    assert np.abs(frame - np.array(WALL)).mean() > 10  # not the green wall any more


@pytest.mark.parametrize("case", ["missing", "garbage", "cut_header", "cut_stream", "no_weights", "bad_weights"])
def test_failures_are_one_line_and_leave_no_file(av, mediapipe, lightning_ckpt, tmp_path, capfd, case):
    clip, weights = tmp_path / "in.mp4", lightning_ckpt
    rng = np.random.default_rng(0)
    wall = [np.full((96, 128, 3), WALL, np.uint8)] * 30
    if case == "garbage":
        clip.write_bytes(rng.bytes(4000))
    elif case == "cut_header":
        write_clip(clip, wall, audio=None)  # moov atom last: cut off, nothing can be read
        clip.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    elif case == "cut_stream":  # opens fine, then runs out part-way (after the model is loaded)
        write_clip(clip, [rng.integers(0, 256, (96, 128, 3), dtype=np.uint8) for _ in range(30)],
                   audio=None, options={"movflags": "faststart"})
        clip.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    elif case in ("no_weights", "bad_weights"):
        write_clip(clip, wall[:2], audio=None)
        weights = tmp_path / ("absent.ckpt" if case == "no_weights" else "in.mp4")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    code, stdout, stderr = run_video([clip, "-o", out_dir / "o.mp4", "--weights", weights,
                                      "--backend", "eager", "--device", "cpu"], capfd)
    assert code != 0
    lines = stderr.strip().splitlines()
    assert lines and lines[-1].startswith("hida_rt.video: error: ") and "Traceback" not in stderr
    assert len([ln for ln in lines if "error" in ln.lower()]) == 1
    assert list(out_dir.iterdir()) == []  # no output, no temp file


def test_bad_arguments_are_one_line(av, face_clip, tmp_path, capfd):
    for args, message in [
        (["--batch-size", "0"], "--batch-size must be at least 1"),
        (["-o", tmp_path / "x.avi"], "output must end in"),
        (["--net-height", "300", "--whole-frame"], "multiple of 256"),
        (["--net-height", "16384", "--whole-frame"], "at --whole-frame: 16384x"),
        (["--net-height", "16384", "--whole-frame"], "GiB available; the largest that fits is"),
        (["-o", face_clip], "would overwrite the input"),
        (["-o", face_clip / "x.mp4"], f"{face_clip / 'x.mp4'}: "),  # a file where a folder should be
    ]:
        code, _, stderr = run_video([face_clip, "--weights", "w.ckpt", *args], capfd)
        assert code == 2 and stderr.count("\n") == 1 and message in stderr, stderr


def test_several_faces_of_a_filmed_group_photo(mediapipe, lightning_ckpt, tmp_path, capfd):
    """--max-faces: a real group photo filmed by a moving camera, each of its faces sketched in each frame."""
    pytest.importorskip("skimage.data", reason="scikit-image (bundled real photos) is missing")
    from testutils.real_photos import filmed, group_photo, moved

    layout = ((0.24, 0.3, 0.42, "hopper", False, 0), (0.18, 0.68, 0.40, "astronaut", False, 6))
    photo, placed = group_photo(1280, 720, layout=layout)
    frames, matrices = filmed(photo, 2, 640, 360, pan=0.02, zoom=0.04, degrees=1.0)
    clip = write_clip(tmp_path / "pair.mp4", frames, audio=None)
    out = tmp_path / "pair_sketch.mp4"
    code, stdout, stderr = run_video([clip, "-o", out, "--weights", lightning_ckpt, "--backend", "eager",
                                      "--device", "cpu", "--max-faces", "3", "--workers", "2"], capfd)
    assert code == 0, stderr
    assert stdout.startswith(f"wrote {out}: 2 frames 640x360, 2 with a face")
    for before, after, m in zip(probe(clip)["frames"], probe(out)["frames"], matrices):
        for face in (moved(p, m) for p in placed):
            x, y, r = int(face.cx), int(face.cy), int(face.height * 0.2)
            core = after[y - r:y + r, x - r:x + r].astype(int)
            assert (core.max(axis=2) - core.min(axis=2)).mean() < 6, face  # grey now: sketched (up to H.264)
            assert np.abs(core - before[y - r:y + r, x - r:x + r]).mean() > 10
        assert np.abs(after[:30, :30].astype(int) - before[:30, :30]).mean() < 4  # the rest untouched


def test_bad_workers_is_one_line(lightning_ckpt, face_clip, tmp_path, capfd):
    code, _, err = run_video([face_clip, "-o", tmp_path / "o.mp4", "--weights", lightning_ckpt, "--workers", "0"],
                             capfd)
    assert code == 2 and err.strip() == "hida_rt.video: error: --workers must be at least 1"
    assert list(tmp_path.iterdir()) == []
