"""FS2K styles and the generator's style channels.

The training code's one-hot order is not the FS2K numbering: channel 0 is
FS2K style 2, channel 1 is style 3, channel 2 is style 1 (style 1: sparse
outlines, style 3: heavy shading).
"""
from __future__ import annotations

import math
import re

import torch

from .errors import InputError

# FS2K style number -> generator style channel.
STYLE_CHANNEL = {1: 2, 2: 0, 3: 1}


def style_vector(weights: tuple[float, float, float] | list[float]) -> torch.Tensor:
    """Weights of FS2K styles (1, 2, 3) -> the generator's 3-vector (a convex mix, summing to 1)."""
    if len(weights) != 3:
        raise InputError(f"a style mix needs three weights (styles 1, 2, 3), got {len(weights)}")
    w = [float(x) for x in weights]
    if any(x < 0 or not math.isfinite(x) for x in w) or not 0 < sum(w) < math.inf:
        raise InputError(f"style weights must be non-negative and not all zero, got {w}")
    total = sum(w)
    vec = torch.zeros(3)
    for style, channel in STYLE_CHANNEL.items():
        vec[channel] = w[style - 1] / total
    return vec


def one_hot(style: int) -> torch.Tensor:
    if style not in STYLE_CHANNEL:
        raise InputError(f"style must be 1, 2 or 3, got {style}")
    return style_vector([1.0 if s == style else 0.0 for s in (1, 2, 3)])


def parse_style(text: str | list[str]) -> torch.Tensor:
    """CLI text -> style vector: "2" (one FS2K style) or "0.2,0.3,0.5" / ["0.2","0.3","0.5"] (a mix)."""
    parts = [p for t in ([text] if isinstance(text, str) else text) for p in re.split(r"[,\s]+", t.strip()) if p]
    try:
        nums = [float(p) for p in parts]
    except ValueError:
        raise InputError(f"--style takes 1, 2 or 3, or three weights like 0.2,0.3,0.5; got {' '.join(parts)!r}") from None
    if len(nums) == 1:
        if nums[0] not in (1.0, 2.0, 3.0):
            raise InputError(f"style must be 1, 2 or 3, got {parts[0]}")
        return one_hot(int(nums[0]))
    return style_vector(nums)


def describe(vec: torch.Tensor) -> str:
    """Style vector -> short text for file names and logs: 's2' or 'mix0.20-0.30-0.50' (FS2K order)."""
    fs2k = [float(vec[STYLE_CHANNEL[s]]) for s in (1, 2, 3)]
    for s, w in zip((1, 2, 3), fs2k):
        if w == 1.0:
            return f"s{s}"
    return "mix" + "-".join(f"{w:.2f}" for w in fs2k)
