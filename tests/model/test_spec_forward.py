"""L0: the eager generator equals docs/model.md, transcribed independently.

`spec_forward` below is the spec's pseudo-code written out with
torch.nn.functional on a raw state dict, in float64, with the NumPy
deformable conv from testutils; it shares no code with hida_rt.model. The
eager model, cast to float64, must match it to rounding (1e-9), which proves
the wiring, the channel orders and every formula; float32 then only adds
float32 rounding.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from hida_rt.checkpoint import load_state_dict
from hida_rt.model import HIDAGenerator
from testutils.deform_numpy import deform_conv_numpy


def spec_forward(sd: dict[str, torch.Tensor], photo, depth, style) -> torch.Tensor:
    sd = {k: v.double() for k, v in sd.items()}
    photo, depth, style = photo.double(), depth.double(), style.double()
    n, _, hh, ww = photo.shape

    def meta_acon(x, pre):
        # b = sigmoid(fc2(fc1(mean_hw(x)))); d = (p1 - p2) x; out = d sigmoid(b d) + p2 x
        m = x.mean(dim=(2, 3), keepdim=True)
        b = torch.sigmoid(F.conv2d(F.conv2d(m, sd[pre + "fc1.weight"], sd[pre + "fc1.bias"]),
                                   sd[pre + "fc2.weight"], sd[pre + "fc2.bias"]))
        d = (sd[pre + "p1"] - sd[pre + "p2"]) * x
        return d * torch.sigmoid(b * d) + sd[pre + "p2"] * x

    def inorm(x):  # no affine, eps 1e-5, biased variance
        mu = x.mean(dim=(2, 3), keepdim=True)
        var = ((x - mu) ** 2).mean(dim=(2, 3), keepdim=True)
        return (x - mu) / torch.sqrt(var + 1e-5)

    def conv(x, pre, **kw):
        return F.conv2d(x, sd[pre + "weight"], sd[pre + "bias"], **kw)

    def down(x, k, norm=True):
        y = conv(meta_acon(x, f"down{k}.model.0."), f"down{k}.model.1.", stride=2, padding=1)
        return inorm(y) if norm else y

    def convT(x, pre):
        return F.conv_transpose2d(x, sd[pre + "weight"], sd[pre + "bias"], stride=2, padding=1)

    def dcn(x, pre):
        om = conv(x, pre + "conv_offset_mask.", padding=1)
        o1, o2, m = om[:, :18], om[:, 18:36], om[:, 36:]
        offset = torch.cat([o1, o2], dim=1)
        out = deform_conv_numpy(x.numpy(), offset.numpy(), torch.sigmoid(m).numpy(),
                                sd[pre + "weight"].numpy(), sd[pre + "bias"].numpy())
        return torch.from_numpy(out)

    style_map = style[:, :, None, None].expand(n, 3, hh, ww)
    cond_full = torch.cat([depth, style_map], dim=1)

    def up(k, de, en=None):
        pre = f"up{k}."
        x = de if en is None else torch.cat([de, en], dim=1)
        if k in (0, 1):
            y = dcn(F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False), pre + "dcn.")
        else:
            y = convT(x, pre + "layers.")
        cond = F.interpolate(cond_full, size=y.shape[2:], mode="nearest")
        if en is not None:
            e = meta_acon(convT(en, pre + "en_conv."), pre + "metaAcon_en.")
            h = conv(torch.cat([cond, e], dim=1), pre + "fc1.", padding=1)
        else:
            h = conv(cond, pre + "fc2.", padding=1)
        a = meta_acon(h, pre + "metaAcon.")
        theta = torch.sigmoid(conv(a, pre + "fc3.", padding=1))
        p1, p2 = sd[pre + "p1"], sd[pre + "p2"]
        d = (p1 - p2) * y
        f = d * torch.sigmoid(theta * d) + p2 * y
        gamma = conv(a, pre + "norm.mlp_gamma.", padding=1)
        beta = conv(a, pre + "norm.mlp_beta.", padding=1)
        return inorm(f) * (1 + gamma) + beta + f

    d1r = conv(photo, "down_rgb.", stride=2, padding=1)
    d1p = conv(depth, "down_par.", stride=2, padding=1)
    d1 = torch.cat([d1r, d1p], dim=1)
    d2 = down(d1, 2)
    d3 = down(d2, 3)
    d4 = down(d3, 4)
    d5 = down(d4, 5)
    d6 = down(d5, 6)
    d7 = down(d6, 7)
    d8 = down(d7, 8, norm=False)
    u0 = up(0, d8)
    u1 = up(1, u0, d7)
    u2 = up(2, u1, d6)
    u3 = up(3, u2, d5)
    u4 = up(4, u3, d4)
    u5 = up(5, u4, d3)
    u6 = up(6, u5, d2)
    z = meta_acon(torch.cat([u6, d1r], dim=1), "final_rgb.0.")
    return torch.tanh(convT(z, "final_rgb.1."))


def test_eager_equals_spec_float64(spread_ckpt, random_inputs):
    sd = load_state_dict(spread_ckpt)
    model = HIDAGenerator()
    model.load_state_dict(sd)
    model = model.double().eval()
    photo, depth, style = random_inputs(1, 256, 256)
    want = spec_forward(sd, photo, depth, style)
    with torch.no_grad():
        got = model(photo.double(), depth.double(), style.double())
    assert got.shape == (1, 1, 256, 256)
    assert want.std() > 0.1, "the oracle's sketch should carry signal with gain-1 weights"
    np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-9, rtol=0)
    # float32 eager adds only float32 rounding
    with torch.no_grad():
        got32 = model.float()(photo, depth, style)
    assert (got32.double() - want).abs().max() < 1e-3


def test_non_square_input_runs_and_matches_spec(spread_model, random_inputs):
    """256x512: the net is fully convolutional; the condition map follows y's H and W."""
    photo, depth, style = random_inputs(1, 256, 512)
    sd = spread_model.state_dict()
    with torch.no_grad():
        got = spread_model.double()(photo.double(), depth.double(), style.double())
        spread_model.float()
    want = spec_forward(sd, photo, depth, style)
    assert got.shape == (1, 1, 256, 512)
    np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-9, rtol=0)


def test_batch_items_are_independent(spread_model, random_inputs):
    photo, depth, style = random_inputs(3)
    with torch.no_grad():
        together = spread_model(photo, depth, style)
        alone = torch.cat([spread_model(photo[i:i + 1], depth[i:i + 1], style[i:i + 1]) for i in range(3)])
    # batched matmuls may block differently: float32 rounding, not semantics
    torch.testing.assert_close(together, alone, atol=1e-4, rtol=0)
