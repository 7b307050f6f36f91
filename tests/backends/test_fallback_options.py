"""What `auto` settles once (the eager fallback's dtype, --recheck) reaches the backends that batch jobs and
Ray Serve replicas create later, not only the in-process CLI's.

`backends.choose` is replaced by a stand-in that behaves as on a GPU whose triton self-check failed: "auto"
means eager FP16, an explicit "eager" means eager with its default dtype (as the real choose does).
"""
from __future__ import annotations

import argparse

import pytest
import torch

import hida_rt.backends as backends
from hida_rt.batch.__main__ import prepare_backend
from hida_rt.batch.job import Settings, Sketcher


@pytest.fixture
def failed_triton_verdict(monkeypatch):
    calls = []

    def choose(name="auto", **options):
        calls.append((name, options.get("recheck", False)))
        return ("eager", {"dtype": "fp16"}) if name == "auto" else (name, {})

    monkeypatch.setattr(backends, "choose", choose)
    return calls


def batch_settings(weights) -> Settings:
    return Settings(weights=str(weights), backend="auto", device="cpu", onnx=None, engine=None, style=(0, 0, 1),
                    size=256, in_fs=None, depth_fs=None, out_fs=None)


def test_an_in_process_batch_keeps_the_fallback_dtype(spread_ckpt, failed_triton_verdict):
    args = argparse.Namespace(ray=False, gpus_per_actor=None, quiet=True, recheck=True)
    settings = prepare_backend(batch_settings(spread_ckpt), args)
    assert (settings.backend, settings.dtype) == ("eager", "fp16")
    assert Sketcher(settings).backend.dtype == torch.float16
    assert failed_triton_verdict[0] == ("auto", True)  # --recheck reached the one place that decides


def test_gpu_actors_decide_themselves_and_get_recheck(spread_ckpt, failed_triton_verdict):
    args = argparse.Namespace(ray=True, gpus_per_actor=1, quiet=True, recheck=True)
    settings = prepare_backend(batch_settings(spread_ckpt), args)
    assert (settings.backend, settings.dtype, settings.recheck) == ("auto", None, True)
    assert Sketcher(settings).backend.dtype == torch.float16  # what an actor builds: auto, rechecked
    assert failed_triton_verdict == [("auto", True)]


@pytest.mark.parametrize("extra, prepared, dtype, recheck", [
    ([], [("auto", True)], "fp16", False),                         # CPU replicas: settled once, here
    (["--gpus-per-replica", "1"], [], None, True),                 # GPU replicas: each decides, and rechecks
])
def test_ray_serve_replicas_get_the_fallback_dtype_or_recheck(spread_ckpt, failed_triton_verdict, monkeypatch,
                                                             extra, prepared, dtype, recheck):
    pytest.importorskip("ray.serve", reason="the ray extra is not installed (pip install 'ray[serve,data]==2.60.0')")
    pytest.importorskip("fastapi", reason="the serve extra (FastAPI) is not installed")
    from hida_rt.serve import ray_deployment
    from hida_rt.serve.__main__ import build_parser, settings_from_args
    from hida_rt.serve.ray_options import run_on_ray

    specs = []
    monkeypatch.setattr(ray_deployment, "serve_on_ray", lambda settings, spec, scaling, **kw: specs.append(spec) or 0)
    args = build_parser().parse_args(["--weights", str(spread_ckpt), "--ray", "--device", "cpu", "--recheck", *extra])
    assert run_on_ray(args, settings_from_args(args)) == 0
    (spec,) = specs
    assert failed_triton_verdict == prepared
    assert (spec.dtype, spec.recheck) == (dtype, recheck)
