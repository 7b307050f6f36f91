"""Checkpoint I/O: both layouts load identically; every bad file is refused with one clear line."""
from __future__ import annotations

import pickle

import pytest
import torch

from hida_rt.checkpoint import load_generator, load_state_dict
from hida_rt.errors import CheckpointError
from hida_rt.model import inference_shapes
from hida_rt.random_weights import random_generator_state, random_lightning_checkpoint


@pytest.fixture(scope="module")
def small_state():
    """The inference tensors only (a valid plain checkpoint, a third the size of the full one)."""
    full = random_generator_state(seed=5)
    return {k: full[k] for k in inference_shapes()}


def test_lightning_and_plain_layouts_load_the_same(tmp_path, lightning_ckpt):
    plain = tmp_path / "plain.pth"
    torch.save(random_generator_state(seed=0), plain)  # same seed as lightning_ckpt's generator
    a, b = load_state_dict(lightning_ckpt), load_state_dict(plain)
    assert a.keys() == b.keys() == inference_shapes().keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_lightning_ignores_unrelated_keys(lightning_ckpt):
    raw = torch.load(lightning_ckpt, weights_only=True)
    assert any(k.startswith("Discrimanator.") for k in raw["state_dict"])
    sd = load_state_dict(lightning_ckpt)
    assert not any(k.startswith(("Discrimanator", "Generator.")) for k in sd)
    assert not any(".bn1." in k or k.startswith("final_par") for k in sd)  # training-only parts dropped


def test_dataparallel_prefix_and_unused_keys_optional(tmp_path, small_state):
    path = tmp_path / "dp.pth"
    torch.save({"module." + k: v for k, v in small_state.items()}, path)
    assert load_state_dict(path).keys() == small_state.keys()


def test_loaded_generator_is_inference_ready(tmp_path, small_state):
    path = tmp_path / "g.pth"
    torch.save(small_state, path)
    model = load_generator(path)
    assert not model.training
    assert not any(p.requires_grad for p in model.parameters())
    torch.testing.assert_close(model.up1.dcn.weight, small_state["up1.dcn.weight"])


def expect_refusal(path, *fragments):
    with pytest.raises(CheckpointError) as info:
        load_state_dict(path)
    msg = str(info.value)
    assert "\n" not in msg and str(path) in msg
    for frag in fragments:
        assert frag in msg, msg
    return msg


def test_missing_file(tmp_path):
    expect_refusal(tmp_path / "nope.ckpt", "no such file", "random_weights")


def test_directory(tmp_path):
    expect_refusal(tmp_path, "directory")


@pytest.mark.parametrize("content", [b"", b"hello, this is text\n", b"\x89PNG\r\n\x1a\n" + bytes(200)])
def test_not_a_checkpoint(tmp_path, content):
    path = tmp_path / "bad.ckpt"
    path.write_bytes(content)
    expect_refusal(path, "")


def test_truncated_checkpoint(tmp_path, small_state):
    path = tmp_path / "cut.pth"
    torch.save(small_state, path)
    path.write_bytes(path.read_bytes()[:50_000])
    expect_refusal(path, "not a readable PyTorch checkpoint")


class Payload:
    """Unpickling this would create a marker file; weights_only must never run it."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("save", ["torch", "pickle"])
def test_pickle_that_needs_code_is_refused_and_not_run(tmp_path, save):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    obj = {"state_dict": {"x": Payload(str(marker))}}
    if save == "torch":
        torch.save(obj, path)
    else:
        path.write_bytes(pickle.dumps(obj, protocol=4))
    expect_refusal(path, "needs arbitrary code")
    assert not marker.exists()


def test_foreign_network_names_missing_keys(tmp_path):
    path = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7), "fc.weight": torch.zeros(10, 512)}, path)
    msg = expect_refusal(path, "not a HIDA generator checkpoint", "246 of 246 required tensors missing", "down_rgb.weight")
    assert "..." in msg


def test_misshaped_keys_are_named(tmp_path, small_state):
    bad = dict(small_state)
    bad["up3.fc3.weight"] = torch.zeros(10, 10, 3, 3)
    del bad["up5.p1"]
    path = tmp_path / "bad.pth"
    torch.save(bad, path)
    expect_refusal(path, "1 of 246 required tensors missing (up5.p1)", "up3.fc3.weight (10, 10, 3, 3) != (512, 512, 3, 3)")


def test_non_finite_weights_are_refused(tmp_path, small_state):
    bad = dict(small_state)
    bad["down4.model.1.weight"] = bad["down4.model.1.weight"].clone()
    bad["down4.model.1.weight"][0, 0, 0, 0] = float("nan")
    path = tmp_path / "nan.pth"
    torch.save(bad, path)
    expect_refusal(path, "down4.model.1.weight", "NaN")


def test_lightning_without_generator_keys(tmp_path):
    ckpt = random_lightning_checkpoint(seed=0)
    ckpt["state_dict"] = {k: v for k, v in ckpt["state_dict"].items() if not k.startswith("Generator.")}
    path = tmp_path / "disc_only.ckpt"
    torch.save(ckpt, path)
    expect_refusal(path, "not a HIDA generator checkpoint")
