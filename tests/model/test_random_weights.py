"""The random checkpoint: published layout, the authors' init, deterministic in its seed."""
from __future__ import annotations

import hashlib
import math

import pytest
import torch
from testutils.cli import assert_one_line_error, run_in_process, run_module

from hida_rt.model import full_shapes
from hida_rt.random_weights import AUTHORS_GAIN, random_generator_state, random_lightning_checkpoint


def test_layout_is_the_published_one():
    ckpt = random_lightning_checkpoint(seed=0)
    sd = ckpt["state_dict"]
    gen = {k[len("Generator."):]: v for k, v in sd.items() if k.startswith("Generator.")}
    assert {k: v.shape for k, v in gen.items()} == full_shapes()
    assert len(gen) == 768
    n = sum(v.numel() for k, v in gen.items() if v.is_floating_point())
    assert 108e6 < n < 110e6  # docs/model.md: ~109 M parameters
    assert any(k.startswith("Discrimanator.") for k in sd)
    assert {"epoch", "global_step", "pytorch-lightning_version"} <= ckpt.keys()


def test_init_follows_the_authors():
    sd = random_generator_state(seed=3)
    w = sd["up4.fc3.weight"]  # 256 x 256 x 3 x 3 conv: xavier normal, gain 0.02
    fan = 256 * 9
    assert w.std().item() == pytest.approx(AUTHORS_GAIN * math.sqrt(2 / (fan + fan)), rel=0.02)
    assert torch.count_nonzero(sd["up4.fc3.bias"]) == 0
    dcn = sd["up1.dcn.weight"]  # DCNv2's own uniform init, |w| <= 1/sqrt(fan_in)
    assert dcn.abs().max() <= 1 / math.sqrt(1024 * 9) and dcn.std() > 0
    assert sd["up2.p1"].std() > 0.5  # ACON p1/p2 ~ N(0, 1)
    assert torch.all(sd["down3.model.0.bn1.running_var"] == 1)


def test_same_seed_same_tensors_other_seed_differs():
    a, b, c = random_generator_state(7), random_generator_state(7), random_generator_state(8)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["down2.model.1.weight"], c["down2.model.1.weight"])


def test_cli_writes_identical_files_for_a_seed(tmp_path):
    """Once as a user runs it (a fresh process), once in-process: same seed, same bytes, across processes."""
    paths = [tmp_path / "a" / "w.ckpt", tmp_path / "b.ckpt"]
    for p, in_process in zip(paths, (False, True)):
        args = ["-o", p, "--seed", "4", "--plain"]
        r = run_in_process("hida_rt.random_weights", args) if in_process else run_module("hida_rt.random_weights", *args)
        assert r.returncode == 0, r.stderr
        assert "768 generator tensors" in r.stdout
    digests = {hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}
    assert len(digests) == 1
    assert not list(tmp_path.rglob("*.tmp*"))


def test_cli_rejects_bad_gain(tmp_path):
    r = run_in_process("hida_rt.random_weights", ["-o", tmp_path / "x.ckpt", "--gain", "0"])
    assert_one_line_error(r, "--gain", code=2, prog="hida_rt.random_weights")
    assert r.stderr.count("\n") == 1
    assert not list(tmp_path.iterdir())
