"""The triton backend's first-use self-check (kernels/self_check.py, hida_rt/self_check.py) and what "auto" does
with its verdict (hida_rt.backends.choose), proven on CPU.

The probe runs for real: the kernels in Triton's interpreter on the CPU
(tests/conftest.py sets TRITON_INTERPRET), against their references and
eager FP32. Only "can the triton backend run here" is answered yes, so that
choose() asks for the verdict on a machine without a GPU; the probe is told
to use the CPU through the backend's own `device` option. A deliberately
wrong kernel (IDA off by 0.05) must make "auto" fall back to eager and an
explicit --backend triton refuse with exit 2 and the figures.
"""
from __future__ import annotations

import json
import shutil

import pytest
import torch
from testutils.cli import run_in_process
from testutils.gpu import ON_GPU

import hida_rt
from hida_rt import backends
from hida_rt import self_check as verdicts
from hida_rt.errors import BackendUnavailable
from hida_rt.kernels import ida
from hida_rt.kernels import self_check as probe_module
from hida_rt.kernels.triton_backend import TritonBackend

pytestmark = pytest.mark.skipif(ON_GPU, reason="proves the logic on CPU; on a GPU the probe runs on the device")
CPU = dict(device="cpu", dtype="fp32")
WRONG_BY = 0.05


def _usable(monkeypatch) -> None:
    monkeypatch.setattr(TritonBackend, "unavailable_reason", classmethod(lambda cls, **options: None))


def _fresh_process_state(monkeypatch) -> None:
    monkeypatch.setattr(verdicts, "_probed", set())
    monkeypatch.setattr(backends, "_said", set())


@pytest.fixture
def triton_here(monkeypatch, tmp_path):
    """An empty verdict cache (HIDA_RT_CACHE), and the triton backend answering that it can run here."""
    monkeypatch.setenv("HIDA_RT_CACHE", str(tmp_path / "cache"))
    _fresh_process_state(monkeypatch)
    _usable(monkeypatch)
    return tmp_path / "cache"


@pytest.fixture
def wrong_ida(monkeypatch):
    real = ida.ida

    def off_by_a_little(*args, **kwargs):
        return real(*args, **kwargs).add_(WRONG_BY)
    monkeypatch.setattr(ida, "ida", off_by_a_little)


def _count_probes(monkeypatch) -> list:
    calls = []
    real = probe_module.probe

    def counted(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)
    monkeypatch.setattr(probe_module, "probe", counted)
    return calls


@pytest.fixture(scope="module")
def passing_cache(tmp_path_factory):
    """A cache folder holding a real passing verdict (the full probe: four kernels, then the network, ~1 min),
    with what the first resolve printed and returned."""
    cache = tmp_path_factory.mktemp("verdicts")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HIDA_RT_CACHE", str(cache))
        _fresh_process_state(mp)
        _usable(mp)
        import contextlib
        import io
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            chosen = backends.choose("auto", weights=None, **CPU)
    return cache, chosen, err.getvalue()


def _new_process_with(cached, monkeypatch, tmp_path):
    """A copy of the verdict folder `cached` as this process's cache, with nothing probed or said yet."""
    cache = tmp_path / "cache"
    shutil.copytree(cached, cache)
    monkeypatch.setenv("HIDA_RT_CACHE", str(cache))
    _fresh_process_state(monkeypatch)
    _usable(monkeypatch)
    return cache


def _stored(cache) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((cache / "self_check").glob("*.json"))]


def test_a_passing_probe_is_cached_and_auto_picks_triton(passing_cache, monkeypatch):
    cache, chosen, stderr = passing_cache
    assert chosen == ("triton", {})
    assert "checking the triton backend" in stderr and len(stderr.strip().splitlines()) == 1, stderr
    [stored] = _stored(cache)
    assert stored["passed"] and stored["backend"] == "triton"
    kinds = [c["kind"] for c in stored["checks"]]
    assert kinds == ["kernel"] * 4 + ["network"], stored["checks"]
    assert all(c["passed"] for c in stored["checks"])
    network = stored["checks"][-1]["figures"]
    assert network["nonfinite"] == 0 and network["max_abs"] <= 1e-4, network
    key = stored["key"]
    assert key["torch"] == torch.__version__ and key["hida_rt"] == hida_rt.__version__ and key["dtype"] == "fp32"
    assert key["triton"] and key["gpu"] == "CPU (Triton interpreter)"

    # The next process reads the verdict instead of probing.
    monkeypatch.setenv("HIDA_RT_CACHE", str(cache))
    _fresh_process_state(monkeypatch)
    _usable(monkeypatch)
    calls = _count_probes(monkeypatch)
    assert backends.choose("auto", weights=None, **CPU) == ("triton", {})
    assert backends.resolve("triton", weights=None, **CPU) == "triton"
    assert calls == []


def test_another_version_is_probed_anew(passing_cache, monkeypatch, tmp_path, wrong_ida):
    cache = _new_process_with(passing_cache[0], monkeypatch, tmp_path)
    monkeypatch.setattr(hida_rt, "__version__", hida_rt.__version__ + ".post1")
    calls = _count_probes(monkeypatch)
    assert backends.resolve("auto", weights=None, **CPU) == "eager"
    assert len(calls) == 1 and len(_stored(cache)) == 2


def test_a_wrong_kernel_makes_auto_fall_back_to_eager(triton_here, wrong_ida, capsys):
    assert backends.choose("auto", weights=None, **CPU) == ("eager", {})
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and err[0].startswith("hida_rt: checking the triton backend"), err
    assert "did not pass its self-check, so eager FP32 runs instead" in err[1] and "ida (1, 128, 64, 64)" in err[1]
    [stored] = _stored(triton_here)
    assert not stored["passed"]
    failed = [c for c in stored["checks"] if not c["passed"]]
    assert [c["name"].split()[0] for c in failed] == ["ida"]
    assert failed[0]["figures"]["max_abs"] == pytest.approx(WRONG_BY, rel=0.05)
    assert [c["kind"] for c in stored["checks"]] == ["kernel"] * 4  # the network is not run after a kernel failed
    assert "the network was not run" in stored["note"]
    # Said once per process, however often the backend is resolved.
    assert backends.choose("auto", weights=None, **CPU) == ("eager", {})
    assert capsys.readouterr().err == ""


def test_the_fallback_is_eager_fp16_on_a_gpu(triton_here, wrong_ida, monkeypatch, capsys):
    monkeypatch.setattr(backends, "_on_gpu", lambda options: True)
    assert backends.choose("auto", weights=None, **CPU) == ("eager", {"dtype": "fp16"})
    assert "so eager FP16 runs instead" in capsys.readouterr().err


def test_explicit_triton_with_a_wrong_kernel_exits_2_with_the_figures(triton_here, wrong_ida, spread_ckpt,
                                                                      sample_pair, tmp_path):
    photo, depth = sample_pair
    r = run_in_process("hida_rt.sketch", [photo, "--depth", depth, "--weights", spread_ckpt, "--backend", "triton",
                                          "--device", "cpu", "-o", tmp_path / "out.png"])
    assert r.returncode == 2, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("hida_rt.sketch: error: backend 'triton' did not pass its self-check"), r.stderr
    assert "ida (1, 128, 64, 64) float16: max_abs" in last and "FAILED" in last and "--recheck" in last
    assert "Traceback" not in r.stderr and not (tmp_path / "out.png").exists()


def test_recheck_probes_again_and_replaces_the_verdict(passing_cache, monkeypatch, tmp_path, wrong_ida):
    cache = _new_process_with(passing_cache[0], monkeypatch, tmp_path)
    calls = _count_probes(monkeypatch)
    # The cached pass stands until a recheck, even with the kernel now wrong...
    assert backends.resolve("triton", weights=None, **CPU) == "triton"
    assert calls == []
    # ...which the tools' --recheck asks for.
    with pytest.raises(BackendUnavailable, match="did not pass its self-check"):
        backends.choose("triton", weights=None, recheck=True, **CPU)
    assert len(calls) == 1
    [stored] = _stored(cache)
    assert not stored["passed"]
    # Once per process: the same resolve again reads the new verdict.
    assert backends.resolve("auto", weights=None, recheck=True, **CPU) == "eager"
    assert len(calls) == 1


def test_recheck_is_an_option_of_every_tool(triton_here, wrong_ida, monkeypatch, spread_ckpt, sample_pair,
                                            tmp_path):
    # A cached passing verdict for the key the sketch CLI's probe has (device cpu, fp16 default).
    from hida_rt.kernels.triton_backend import probe_key
    verdicts.store(verdicts.Verdict(backend="triton", passed=True, key=probe_key(torch.device("cpu"), "fp16"),
                                    checks=[dict(name="stand-in", passed=True)], created=verdicts.now()))
    calls = _count_probes(monkeypatch)
    photo, depth = sample_pair
    r = run_in_process("hida_rt.sketch", [photo, "--depth", depth, "--weights", spread_ckpt, "--backend", "triton",
                                          "--device", "cpu", "--recheck", "-o", tmp_path / "out.png"])
    assert r.returncode == 2 and len(calls) == 1, r.stderr
    assert "did not pass its self-check" in r.stderr


def test_an_unreadable_verdict_is_probed_again(triton_here, monkeypatch):
    from hida_rt.kernels.triton_backend import probe_key
    key = probe_key(torch.device("cpu"), "fp32")
    path = verdicts.verdict_path("triton", key)
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    monkeypatch.setattr(probe_module, "probe", lambda device, dtype: ([dict(name="x", passed=False)], "stand-in"))
    verdict = TritonBackend.self_check(**CPU)
    assert not verdict.passed and verdicts.load(path) == verdict


def test_the_cache_folder_follows_hida_rt_cache(monkeypatch, tmp_path):
    from hida_rt.cache_dir import user_cache_dir
    monkeypatch.setenv("HIDA_RT_CACHE", str(tmp_path / "c"))
    assert user_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("HIDA_RT_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert user_cache_dir() == tmp_path / "x" / "hida_rt"
