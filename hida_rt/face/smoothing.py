"""Temporal smoothing of landmarks: the One-Euro filter (Casiez, Roussel & Vogel, CHI 2012).

Per-frame landmarks jitter by a pixel or two, which the alignment magnifies
into a shaking sketch. A fixed low-pass would trade that jitter for lag when
the head moves; the One-Euro filter lowers its cutoff when the signal is
still and raises it with speed, so a still face is steady and a moving one
is followed closely.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Smoothing:
    """One-Euro settings. Speeds are in face widths per second (see OneEuroFilter)."""

    min_cutoff: float = 1.0  # Hz: the cutoff of a still face; lower = steadier, laggier
    beta: float = 2.0  # cutoff gained per unit of speed; higher = less lag when moving
    d_cutoff: float = 1.0  # Hz: low-pass of the speed estimate itself


def _alpha(cutoff_hz, dt: float):
    tau = 1.0 / (2 * math.pi * cutoff_hz)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """Vectorised One-Euro filter over an array of coordinates (e.g. 478×3 landmarks).

    Coordinates are divided by `unit` (the face's size when the track began)
    so the settings mean the same for a small face and a large one.
    """

    def __init__(self, settings: Smoothing, unit: float = 1.0, default_dt: float = 1 / 30):
        self.settings = settings
        self.unit = float(unit)
        self.default_dt = default_dt
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t: float | None = None

    def __call__(self, value: np.ndarray, t: float | None = None) -> np.ndarray:
        x = np.asarray(value, dtype=np.float64) / self.unit
        if self._x is None:
            self._x, self._dx = x, np.zeros_like(x)
            self._t = t
            return x * self.unit
        # A missing or non-increasing timestamp (webcam, duplicated frame) counts as one frame.
        dt = self.default_dt if t is None or self._t is None or t <= self._t else t - self._t
        self._t = t
        s = self.settings
        dx = (x - self._x) / dt
        self._dx = self._dx + _alpha(s.d_cutoff, dt) * (dx - self._dx)
        cutoff = s.min_cutoff + s.beta * np.abs(self._dx)
        self._x = self._x + _alpha(cutoff, dt) * (x - self._x)
        return self._x * self.unit
