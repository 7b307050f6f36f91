"""python -m hida_rt.batch in-process: outputs, failures, resuming, input forms, refusals."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]


def test_outputs_equal_the_sketch_cli_within_one_grey_level(clean_run, cli_reference, batch_data, batch_tools):
    assert batch_tools.names(clean_run.output) == batch_data.expected
    for rel, want in cli_reference.items():
        got, ref = batch_tools.grey(clean_run.output / rel), batch_tools.grey(want)
        assert got.shape == ref.shape == (256, 256), rel
        assert np.abs(got - ref).max() <= 1, f"{rel}: batch differs from the sketch CLI by more than 1 grey level"
        assert ref.std() > 10, f"{rel}: a flat sketch proves nothing"


def test_bad_files_are_listed_with_their_reason_not_fatal(clean_run, batch_data, batch_tools):
    s = clean_run.summary
    assert clean_run.code == 1  # some images failed
    assert (s["images"], s["sketched"], s["skipped"]) == (len(batch_data.expected) + 2, len(batch_data.expected), 0)
    failed = {Path(f["file"]).name: f["reason"] for f in s["failed"]}
    assert set(failed) == set(batch_tools.bad), failed   # notes.txt and .hidden.png are not images of the set
    for name, reason in batch_tools.bad.items():
        assert reason in failed[name] and "\n" not in failed[name]
    assert s["images_per_s"] > 0 and s["backend"] == "eager" and s["mode"] == "in-process"


def test_text_summary_and_progress(batch_data, tmp_path, batch_tools):
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(batch_data.set.pairs[0][0], photos)
    shutil.copy(batch_data.set.photos / "broken.png", photos)
    code, stdout, stderr = batch_tools.run(batch_data.argv(tmp_path / "out", source=str(photos)))
    assert code == 1
    assert stdout.startswith(f"sketched 1 of 2 image(s) into {tmp_path / 'out'} in ")
    assert "images/s, in-process, backend eager" in stdout and "1 failed:" in stdout
    assert f"  {photos / 'broken.png'}: cannot read as an image" in stdout
    assert "Traceback" not in stderr
    assert "2 image(s) under" in stderr and "failed: " in stderr and "2/2" in stderr   # plan, failure, progress


def test_rerun_skips_complete_outputs_and_finishes_exactly_the_missing(clean_run, batch_data, batch_tools, tmp_path):
    out = tmp_path / "sketches"
    shutil.copytree(clean_run.output, out)
    missing = sorted(batch_data.expected)[3]
    (out / missing).unlink()
    stale = out / Path(missing).parent / f".{Path(missing).stem}.k2j4x9_q.tmp.png"
    stale.write_bytes(b"half a PNG")   # what a kill during a write leaves
    before = {rel: (out / rel).stat().st_mtime_ns for rel in batch_data.expected if rel != missing}
    code, stdout, _ = batch_tools.run(batch_data.argv(out, "--json", "-q"))
    s = json.loads(stdout)
    assert code == 1 and s["sketched"] == 1 and s["skipped"] == len(batch_data.expected) - 1
    assert batch_tools.names(out) == batch_data.expected   # the stale temp is gone, nothing extra
    assert {rel: (out / rel).stat().st_mtime_ns for rel in before} == before   # complete outputs untouched
    assert np.abs(batch_tools.grey(out / missing) - batch_tools.grey(clean_run.output / missing)).max() <= 1


def test_killed_run_resumes_to_exactly_the_full_set(batch_data, clean_run, batch_tools, tmp_path):
    """SIGKILL a real run once some sketches exist; the rerun completes the set, nothing doubled or half-written."""
    out = tmp_path / "sketches"
    argv = [sys.executable, "-m", "hida_rt.batch", *batch_data.argv(out, "--batch-size", "1", "-q")]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if out.is_dir() and len(list(out.rglob("*_sketch.png"))) >= 2:
                break
            time.sleep(0.02)
        assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read().decode()[-500:]}"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    written = {p.relative_to(out).as_posix() for p in out.rglob("*_sketch.png")}
    assert 2 <= len(written) < len(batch_data.expected), "kill the run halfway, not before or after"
    for rel in written:   # whatever a killed run left under a final name is a complete image
        assert Image.open(out / rel).size == (256, 256)
    code, stdout, _ = batch_tools.run(batch_data.argv(out, "--json", "-q"))
    s = json.loads(stdout)
    assert code == 1 and s["skipped"] == len(written) and s["sketched"] == len(batch_data.expected) - len(written)
    assert batch_tools.names(out) == batch_data.expected
    for rel in batch_data.expected:
        diff = np.abs(batch_tools.grey(out / rel) - batch_tools.grey(clean_run.output / rel)).max()
        assert diff <= 1, f"{rel}: resumed output differs from the clean run's by {diff}"


def test_a_second_rerun_does_nothing(clean_run, batch_data, batch_tools, tmp_path):
    out = tmp_path / "sketches"
    shutil.copytree(clean_run.output, out)
    code, stdout, stderr = batch_tools.run(batch_data.argv(out, "--json"))
    assert code == 1   # broken.png fails again
    s = json.loads(stdout)
    assert (s["sketched"], s["skipped"]) == (0, len(batch_data.expected))
    assert {Path(f["file"]).name for f in s["failed"]} == set(batch_tools.bad)   # failures are retried, and fail
    assert "12 already sketched, 1 to do, 1 refused" in stderr   # broken.png is retried; lonely.jpg has no depth


def test_globs_and_single_files_name_the_right_photos(batch_data, tmp_path):
    from hida_rt.batch.job import plan
    photos, depth = batch_data.set.photos, str(batch_data.set.depth)
    out = tmp_path / "o"

    def planned(source: str) -> dict[str, str]:
        pl = plan(source, str(out), depth)
        return {Path(t.photo).relative_to(photos).as_posix(): Path(t.output).relative_to(out).as_posix()
                for t in pl.tasks}

    sub_png = {f"sub/{p.name}": f"{p.stem}_sketch.png" for p in (photos / "sub").glob("*.png")}
    assert sub_png and planned(str(photos / "sub" / "*.png")) == sub_png   # a glob's folder is the root
    assert planned(str(photos) + "/**/astronaut_0[1-2].*") == {
        "astronaut_01.png": "astronaut_01_sketch.png", "sub/astronaut_02.jpg": "sub/astronaut_02_sketch.png"}
    assert planned(str(photos) + "/*_0?.jpg") == {
        p.name: f"{p.stem}_sketch.png" for p in photos.glob("*_0?.jpg")}   # * stays within a folder
    one = batch_data.set.pairs[0][0]
    assert planned(str(one)) == {one.relative_to(photos).as_posix(): f"{one.stem}_sketch.png"}
    whole = planned(str(photos))
    assert set(whole.values()) == batch_data.expected | {"broken_sketch.png"}   # lonely.jpg: refused, no depth


def test_a_file_uri_input_reads_through_pyarrow(batch_data, clean_run, batch_tools, tmp_path):
    sub = batch_data.set.photos / "sub"
    code, stdout, _ = batch_tools.run(batch_data.argv(tmp_path / "u", "--json", "-q", source=sub.as_uri()))
    assert code == 0 and json.loads(stdout)["sketched"] == len(list(sub.iterdir()))
    for rel in batch_tools.names(tmp_path / "u"):
        assert np.abs(batch_tools.grey(tmp_path / "u" / rel) - batch_tools.grey(clean_run.output / "sub" / rel)).max() <= 1


def test_object_store_writes_go_through_a_temp_object_then_a_move(tmp_path):
    """On a filesystem other than the local one (an object store), write_image writes a hidden temp
    object and moves it into place; scan_outputs sees it as complete and a left temp as stale."""
    import pyarrow.fs as pafs

    from hida_rt.batch import files as bf
    root = tmp_path / "bucket"
    root.mkdir()
    fs = pafs.SubTreeFileSystem(str(root), pafs.LocalFileSystem())   # not a LocalFileSystem: the generic path
    im = Image.fromarray(np.arange(64 * 48, dtype=np.uint32).reshape(48, 64).astype(np.uint8) * 3, mode="L")
    bf.write_image(fs, "sub/a_sketch.png", im)
    (root / "sub" / ".b_sketch.1f2e3d4c.tmp.png").write_bytes(b"half")
    assert sorted(p.name for p in (root / "sub").iterdir()) == [".b_sketch.1f2e3d4c.tmp.png", "a_sketch.png"]
    assert np.array_equal(np.asarray(Image.open(root / "sub" / "a_sketch.png")), np.asarray(im))
    loc = bf.Location(fs, "", "mem://bucket")
    done, temps = bf.scan_outputs(loc)
    assert done == {"sub/a_sketch.png"} and [Path(t).name for t in temps] == [".b_sketch.1f2e3d4c.tmp.png"]
    bf.remove_files(loc, temps)
    assert [p.name for p in (root / "sub").iterdir()] == ["a_sketch.png"]


def test_output_inside_input_is_not_read_back(batch_data, batch_tools, tmp_path):
    photos = tmp_path / "photos"
    shutil.copytree(batch_data.set.photos / "sub", photos)
    argv = batch_data.argv(photos / "sketches", "--json", "-q", source=str(photos))
    code, stdout, _ = batch_tools.run(argv)
    n = len(list(photos.glob("*.*")))
    assert code == 0 and json.loads(stdout)["images"] == n
    code, stdout, _ = batch_tools.run(argv)
    assert json.loads(stdout)["images"] == n   # its own sketches were not taken for photos


def test_without_depth_the_face_front_end_matches_the_sketch_cli(batch_data, tmp_path, batch_tools):
    pytest.importorskip("mediapipe", reason="the face extra (MediaPipe) is not installed")
    from hida_rt.cli import run_cli
    from hida_rt.sketch import main as sketch_main
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(batch_data.set.pairs[0][0], photos / "face.jpg")
    Image.new("RGB", (200, 160), (128, 128, 128)).save(photos / "wall.png")
    code, stdout, _ = batch_tools.run([str(photos), str(tmp_path / "out"), "--weights", str(batch_data.weights),
                                       "--backend", "eager", "--json", "-q"])
    s = json.loads(stdout)
    assert code == 1 and s["sketched"] == 1
    assert [(Path(f["file"]).name, "no face found" in f["reason"]) for f in s["failed"]] == [("wall.png", True)]
    assert run_cli(sketch_main, [str(photos / "face.jpg"), "--weights", str(batch_data.weights), "--backend",
                                 "eager", "-o", str(tmp_path / "cli.png"), "-q"]) == 0
    got, want = batch_tools.grey(tmp_path / "out" / "face_sketch.png"), batch_tools.grey(tmp_path / "cli.png")
    assert got.shape == want.shape == (256, 256) and np.abs(got - want).max() <= 1


@pytest.mark.parametrize("extra, message", [
    (["--actors", "2"], "--actors applies only with --ray"),
    (["--address", "auto"], "--address applies only with --ray"),
    (["--batch-size", "0"], "--batch-size must be at least 1"),
    (["--size", "300"], "multiple of 256"),
    (["--size", "8192"], "--size: 8192x8192 with a batch of 8 needs about"),
    (["--size", "262144", "--batch-size", "1"], "GiB available; the largest that fits is"),
    (["--style", "7"], "style must be 1, 2 or 3"),
    (["--ray", "--actors", "0"], "--actors must be at least 1"),
    (["--ray", "--cpus-per-actor", "-1"], "--cpus-per-actor must be a number >= 0"),
])
def test_bad_arguments_fail_in_one_line_before_any_work(batch_data, tmp_path, batch_tools, extra, message):
    code, _, stderr = batch_tools.run(batch_data.argv(tmp_path / "out", *extra))
    assert code == 2 and message in stderr and len(stderr.strip().splitlines()) == 1, stderr
    assert not (tmp_path / "out").exists()


def test_bad_locations_fail_in_one_line(batch_data, tmp_path, batch_tools):
    cases = [
        (batch_data.argv(tmp_path / "o", source=str(tmp_path / "nowhere")), "no such file or folder"),
        (batch_data.argv(tmp_path / "o", source=str(tmp_path)), "no image files"),
        (batch_data.argv(tmp_path / "o", source="nosuchfs://bucket/photos"), "no installed pyarrow filesystem"),
    ]
    (tmp_path / "file.txt").write_text("x")
    cases.append((batch_data.argv(tmp_path / "file.txt"), "exists and is not a folder"))
    weights = batch_data.argv(tmp_path / "o")
    weights[weights.index("--weights") + 1] = str(tmp_path / "missing.pth")
    cases.append((weights, "missing.pth: no such file"))
    for argv, message in cases:
        code, _, stderr = batch_tools.run(argv)
        assert code == 2 and message in stderr and len(stderr.strip().splitlines()) == 1, (argv, stderr)


def test_without_ray_installed_ray_says_how_to_install(batch_data, tmp_path, batch_tools, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)   # import ray -> ImportError, as when the extra is missing
    code, _, stderr = batch_tools.run(batch_data.argv(tmp_path / "o", "--ray"))
    assert code == 2 and "pip install" in stderr and "ray[serve,data]" in stderr and "Traceback" not in stderr


def test_pool_shape_leaves_cpus_for_the_read_tasks():
    from hida_rt.batch.ray_job import READ_CPUS, pool_shape
    from hida_rt.errors import InputError
    assert pool_shape(2, 1, None) == (1.5, 2)
    assert pool_shape(2, 2, None) == (0.75, 1)
    assert pool_shape(16, 4, None) == (3.875, 4)
    assert pool_shape(2, 2, 0.5) == (0.5, 1)
    assert pool_shape(64, 2, None, node_cpus=16) == (15.5, 16)   # an actor must fit on one node
    with pytest.raises(InputError, match="would hang"):
        pool_shape(2, 2, 1.0)   # every CPU to the actors: Ray Data's reads would never run
    with pytest.raises(InputError, match="no node"):
        pool_shape(64, 2, 20, node_cpus=16)
    with pytest.raises(InputError, match="too few"):
        pool_shape(0.5, 1, None)
    assert 2 * 0.75 + READ_CPUS <= 2


def test_an_actor_construction_error_becomes_its_one_line():
    """Ray hands the driver an actor's __init__ failure only as text; the HidaError line is recovered."""
    pytest.importorskip("ray", reason="the ray extra is not installed")
    import traceback

    from ray.exceptions import ActorDiedError, RayTaskError

    from hida_rt.batch.ray_job import one_line_error
    from hida_rt.errors import CheckpointError
    try:
        raise CheckpointError("w.pth: not a HIDA checkpoint (no generator weights)")
    except CheckpointError as e:
        died = ActorDiedError(cause=RayTaskError("MapWorker.__init__", traceback.format_exc(), e))
    error = one_line_error(died)
    assert str(error) == "on a Ray actor: w.pth: not a HIDA checkpoint (no generator weights)"
    assert error.exit_code == CheckpointError.exit_code
    other = one_line_error(RuntimeError("raylet died\nmore"))
    assert str(other).startswith("the Ray run failed: raylet died") and "\n" not in str(other)
