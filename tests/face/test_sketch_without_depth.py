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


def test_faces_are_found_sketched_and_depth_saved(wild_photos, lightning_ckpt, tmp_path, capfd, monkeypatch):
    from testutils.depth_blur import Spy, close_to_blurred

    spy = Spy(monkeypatch)
    code, out, err = sketch([wild_photos / "two.jpg", "--weights", lightning_ckpt, "--backend", "eager",
                             "--device", "cpu", "--max-faces", "2", "--save-depth", "-o", tmp_path], capfd)
    assert code == 0, err
    # the network got each estimated depth map (as saved), blurred as the authors' script does
    for name, depth in zip(("two_sketch_depth.png", "two_sketch_face2_depth.png"), spy.depths):
        assert close_to_blurred(depth, np.array(Image.open(tmp_path / name)))
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


# A small group: two real faces of different sizes on a real photo (tests/testutils/real_photos.py).
PAIR = ((0.22, 0.3, 0.42, "hopper", False, 0), (0.15, 0.7, 0.40, "astronaut", False, 6))


@pytest.fixture(scope="module")
def group_file(tmp_path_factory):
    pytest.importorskip("mediapipe", reason="the face extra (MediaPipe 0.10.21) is not installed")
    from testutils.real_photos import group_photo

    frame, placed = group_photo(900, 500, layout=PAIR)
    path = tmp_path_factory.mktemp("group") / "pair.png"
    Image.fromarray(frame).save(path)
    return path, frame, placed


def test_composite_gives_the_photo_back_with_every_face_sketched(group_file, lightning_ckpt, tmp_path, capfd):
    path, frame, placed = group_file
    code, out, err = sketch([path, "--weights", lightning_ckpt, "--backend", "eager", "--device", "cpu",
                             "--max-faces", "2", "--composite", "-o", tmp_path], capfd)
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pair_sketch.png"]  # the photo, not the crops
    assert out.startswith("wrote 1 photo with 2 faces sketched to ")
    result = np.array(Image.open(tmp_path / "pair_sketch.png"))
    assert result.shape == frame.shape
    changed = np.abs(result.astype(int) - frame.astype(int)).max(axis=2) > 0
    for face in placed:
        x, y, r = int(face.cx), int(face.cy), int(face.height * 0.25)
        core = result[y - r:y + r, x - r:x + r].astype(int)
        assert (core.max(axis=2) - core.min(axis=2)).max() <= 1  # grey: the sketch, not the colour photo
        assert changed[y - r:y + r, x - r:x + r].mean() > 0.9
    # away from the faces the photo is untouched (PNG: exactly)
    far = np.ones(changed.shape, bool)
    for face in placed:
        h = int(face.height * 1.3)
        far[max(0, int(face.cy) - h):int(face.cy) + h, max(0, int(face.cx) - h):int(face.cx) + h] = False
    assert far.mean() > 0.4 and not changed[far].any()


def test_whole_frame_sketches_a_still_whole(lightning_ckpt, tmp_path, capfd):
    photo = tmp_path / "wide.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (90, 160, 3), dtype=np.uint8)).save(photo)
    code, out, err = sketch([photo, "--weights", lightning_ckpt, "--backend", "eager", "--device", "cpu",
                             "--whole-frame", "-o", tmp_path / "out.png"], capfd)
    assert code == 0, err
    result = Image.open(tmp_path / "out.png")
    assert result.size == (160, 90) and result.mode == "L"  # the photo's size (run at 256x512), a grey sketch


@pytest.mark.parametrize("extra, message", [
    (["--composite", "--depth", "{photo}"], "--composite apply only without --depth"),
    (["--whole-frame", "--composite"], "--whole-frame sketches the whole photo"),
    (["--whole-frame", "--depth", "{photo}"], "takes no --depth"),
    (["--net-height", "512"], "--net-height applies to --whole-frame only"),
    (["--whole-frame", "--net-height", "300"], "not a positive multiple of 256"),
    (["--whole-frame", "--size", "512"], "with --whole-frame set --net-height"),
])
def test_options_of_another_mode_are_refused_in_one_line(lightning_ckpt, tmp_path, capfd, extra, message):
    photo = tmp_path / "p.png"
    Image.fromarray(sample_photo()).save(photo)
    args = [photo, "--weights", lightning_ckpt, *[a.format(photo=photo) for a in extra], "-o", tmp_path / "out"]
    code, out, err = sketch(args, capfd)
    assert code == 2 and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "out").exists()
