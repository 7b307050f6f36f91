"""The One-Euro landmark filter: steady when still, close behind when moving."""
import numpy as np
import pytest

from hida_rt.face.smoothing import OneEuroFilter, Smoothing

FPS = 30


def run(filt, values):
    return np.array([filt(v, i / FPS) for i, v in enumerate(values)])


def test_first_value_passes_through():
    f = OneEuroFilter(Smoothing(), unit=100)
    x = np.array([[3.0, 4.0, 5.0]])
    np.testing.assert_allclose(f(x, 0.0), x)


def test_jitter_of_a_still_face_is_damped():
    rng = np.random.default_rng(0)
    noisy = 200 + rng.normal(0, 1.0, size=(120, 478, 3))  # ±1 px landmark noise, face 200 px wide
    out = run(OneEuroFilter(Smoothing(), unit=200), noisy)
    assert out[30:].std(axis=0).mean() < 0.35 * noisy[30:].std(axis=0).mean()


def test_a_moving_face_is_followed_with_little_lag():
    t = np.arange(60) / FPS
    track = 100 + 400 * t  # 400 px/s, two face widths a second
    out = run(OneEuroFilter(Smoothing(), unit=200), track[:, None])[:, 0]
    lag_px = np.abs(out - track)[20:].max()
    plain_low_pass = run(OneEuroFilter(Smoothing(beta=0.0), unit=200), track[:, None])[:, 0]
    assert lag_px < 25  # under 2 frames of motion
    assert lag_px < 0.5 * np.abs(plain_low_pass - track)[20:].max()  # the speed term is what buys that


def test_missing_timestamps_count_as_one_frame():
    a, b = OneEuroFilter(Smoothing(), unit=1), OneEuroFilter(Smoothing(), unit=1)
    xs = np.linspace(0, 5, 10)[:, None]
    with_t = [a(x, i / 30) for i, x in enumerate(xs)]
    without = [b(x, None) for x in xs]
    np.testing.assert_allclose(with_t, without)


@pytest.mark.parametrize("unit", [50.0, 500.0])
def test_settings_do_not_depend_on_face_size(unit):
    rng = np.random.default_rng(1)
    base = rng.normal(0, 0.01, size=(40, 2)).cumsum(axis=0)
    small = run(OneEuroFilter(Smoothing(), unit=1.0), base)
    scaled = run(OneEuroFilter(Smoothing(), unit=unit), base * unit)
    np.testing.assert_allclose(scaled / unit, small, atol=1e-12)
