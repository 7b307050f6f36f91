"""Style channels: the training code's one-hot order is (style 2, style 3, style 1)."""
from __future__ import annotations

import pytest
import torch

from hida_rt.errors import InputError
from hida_rt.styles import describe, parse_style


@pytest.mark.parametrize("text, channels", [("1", [0, 0, 1]), ("2", [1, 0, 0]), ("3", [0, 1, 0])])
def test_fs2k_style_to_channel(text, channels):
    assert parse_style(text).tolist() == channels


def test_mix_maps_each_weight_to_its_channel_and_normalises():
    v = parse_style("1,2,1")  # styles 1, 2, 3 weighted 1:2:1
    torch.testing.assert_close(v, torch.tensor([0.5, 0.25, 0.25]))
    torch.testing.assert_close(parse_style(["0.2", "0.3", "0.5"]), torch.tensor([0.3, 0.5, 0.2]))
    assert describe(v) == "mix0.25-0.50-0.25" and describe(parse_style("3")) == "s3"


@pytest.mark.parametrize("bad", ["4", "0", "x", "1,2", "-1,1,1", "0,0,0", "1,2,3,4", "inf,0,0", "nan,1,1",
                                 "1e308,1e308,0"])
def test_bad_styles_are_refused(bad):
    with pytest.raises(InputError):
        parse_style(bad)


def test_style_changes_the_sketch(spread_model, random_inputs):
    photo, depth, _ = random_inputs(1)
    with torch.no_grad():
        outs = [spread_model(photo, depth, parse_style(s)[None]) for s in "123"]
    assert (outs[0] - outs[1]).abs().mean() > 1e-3 and (outs[1] - outs[2]).abs().mean() > 1e-3
