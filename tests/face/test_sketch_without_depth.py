"""python -m hida_rt.sketch PHOTO without --depth: faces found, aligned and given an estimated depth."""
import numpy as np
import pytest
from PIL import Image
from testutils.synthetic_video import background, place, sample_depth, sample_photo

from hida_rt.cli import run_cli


@pytest.fixture(scope="module")
def wild_photos(tmp_path_factory):
    pytest.importorskip("mediapipe", reason="the face extra (MediaPipe 0.10.21) is not installed")
    folder = tmp_path_factory.mktemp("wild")
    two = background(400, 700)
    place(two, sample_photo("grace_hopper"), 260, 480, 200, -10)
    place(two, sample_photo("astronaut"), 180, 150, 220, 5)
    Image.fromarray(two).save(folder / "two.jpg", quality=95)
    Image.fromarray(background(200, 300)).save(folder / "wall.png")
    return folder


def sketch(args, capfd):
    from hida_rt.sketch import main

    code = run_cli(main, [str(a) for a in args], prog="hida_rt.sketch")
    return (code, *capfd.readouterr())


def test_faces_are_found_sketched_and_depth_saved(wild_photos, lightning_ckpt, tmp_path, capfd):
    code, out, err = sketch([wild_photos / "two.jpg", "--weights", lightning_ckpt, "--backend", "eager",
                             "--device", "cpu", "--max-faces", "2", "--save-depth", "-o", tmp_path], capfd)
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "two_sketch.png", "two_sketch_depth.png", "two_sketch_face2.png", "two_sketch_face2_depth.png"]
    assert out.startswith("wrote 2 sketches")
    for name in ("two_sketch.png", "two_sketch_face2.png"):
        assert Image.open(tmp_path / name).size == (256, 256)
    # the larger face (grace_hopper) comes first; its estimated depth is the shipped one, near enough
    for name, sample in (("two_sketch_depth.png", "grace_hopper"), ("two_sketch_face2_depth.png", "astronaut")):
        mine = np.array(Image.open(tmp_path / name)).astype(float)
        theirs = sample_depth(sample).astype(float)
        both = (mine > 0) & (theirs > 0)
        assert mine[:12].max() == 0 and mine.max() == 255  # a face on black, the nose brightest
        assert both.sum() / ((mine > 0) | (theirs > 0)).sum() > 0.85
        assert np.corrcoef(mine[both], theirs[both])[0, 1] > 0.9


def test_a_photo_without_a_face_fails_before_writing(wild_photos, lightning_ckpt, tmp_path, capfd):
    code, out, err = sketch([wild_photos / "two.jpg", wild_photos / "wall.png", "--weights", lightning_ckpt,
                             "--backend", "eager", "--device", "cpu", "-o", tmp_path], capfd)
    assert code != 0
    assert err.strip() == f"hida_rt.sketch: error: no face found in {wild_photos / 'wall.png'}"
    assert list(tmp_path.iterdir()) == []  # not even the sketch of the photo that had one


def test_without_the_face_extra_the_error_says_how_to_install_it(lightning_ckpt, tmp_path):
    import subprocess
    import sys

    photo = tmp_path / "p.png"
    Image.fromarray(sample_photo()).save(photo)
    code = ("import sys, runpy; sys.modules['mediapipe'] = None; "
            f"sys.argv = ['hida_rt.sketch', {str(photo)!r}, '--weights', {str(lightning_ckpt)!r}, "
            f"'--backend', 'eager', '-o', {str(tmp_path / 'out')!r}]; "
            "runpy.run_module('hida_rt.sketch', run_name='__main__')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1 and "pip install --no-deps mediapipe==0.10.21" in done.stderr
    assert not (tmp_path / "out").exists()
