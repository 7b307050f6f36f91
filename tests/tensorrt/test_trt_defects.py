"""The TensorRT-facing defects found by reading TensorRT's headers and Python bindings, each proven on CPU against
the recording stand-in for `tensorrt` (testutils/fake_tensorrt.py), which answers None/False where TensorRT does:

- the timing cache: a corrupt or foreign cache is replaced (one line), never passed on as None or ignored;
- batch buckets: one execution context per bucket, its input shape set once, so a CUDA graph is never replayed
  after a shape change and no context changes shape (TensorRT issue 4849 leaks a CUDA module per change);
- set_input_shape / set_tensor_address refusals are one-line errors;
- STRONGLY_TYPED: passed and checked on 10.x only (deprecated and ignored in 11.x), no weak-typing builder flag.
"""
from __future__ import annotations

import contextlib
import sys
import threading
import types
from pathlib import Path

import pytest
import torch
from testutils import fake_tensorrt

from hida_rt.errors import BackendUnavailable
from hida_rt.export import tensorrt_backend as tb
from hida_rt.export import tensorrt_builder as builder

H = W = 256


# ---------------------------------------------------------------- builder

@pytest.fixture
def build(monkeypatch, tmp_path):
    """build(version, cache_bytes=None) -> (trt stand-in, timing cache path): builds through the stand-in."""
    # The plugin registration needs the real tensorrt.plugin; the build's own logic does not.
    monkeypatch.setitem(sys.modules, "hida_rt.export.plugins.tensorrt_qdp", types.SimpleNamespace(REGISTERED=()))

    def run(version="10.9.0.34", cache_bytes=None, config_flags=(), network_keeps_flag=True):
        trt = fake_tensorrt.install(monkeypatch, version)
        if not network_keeps_flag:
            monkeypatch.setattr(fake_tensorrt.FakeNetwork, "get_flag", lambda self, flag: False)
        if config_flags:
            real = fake_tensorrt.FakeBuilder.create_builder_config

            def with_flags(self):
                config = real(self)
                config.flags = {getattr(trt.BuilderFlag, f) for f in config_flags}
                return config
            monkeypatch.setattr(fake_tensorrt.FakeBuilder, "create_builder_config", with_flags)
        cache = tmp_path / "hida_fp16.timing.cache"
        if cache_bytes is not None:
            cache.write_bytes(cache_bytes)
        built = builder.build_engine(tmp_path / "hida_fp16.trt.onnx", tmp_path / "hida_fp16.plan",
                                     builder.BuildSettings(max_batch=8, timing_cache=cache))
        assert built.plan.read_bytes() == b"fake-plan"
        return trt, cache
    return run


def _cache_calls(trt) -> list:
    return [c for c in trt.calls if c[0] in ("create_timing_cache", "set_timing_cache")]


@pytest.mark.parametrize("stale, why", [(b"\x00\x13 not a cache", "TensorRT cannot read it"),
                                        (fake_tensorrt.FOREIGN_CACHE, "TensorRT will not use it")])
def test_a_corrupt_or_foreign_timing_cache_is_replaced_in_one_line(build, capsys, stale, why):
    trt, cache = build(cache_bytes=stale)
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"hida_rt: timing cache {cache}: {why}"), lines
    assert "starting a fresh one" in lines[0]
    # The build ran on a fresh cache, accepted; the unusable file was overwritten with it.
    assert _cache_calls(trt)[-2:] == [("create_timing_cache", b""), ("set_timing_cache", b"", False)]
    assert cache.read_bytes() == fake_tensorrt.VALID_CACHE


def test_a_good_timing_cache_is_used_quietly(build, capsys):
    trt, cache = build(cache_bytes=fake_tensorrt.VALID_CACHE)
    assert capsys.readouterr().err == ""
    assert _cache_calls(trt) == [("create_timing_cache", fake_tensorrt.VALID_CACHE),
                                 ("set_timing_cache", fake_tensorrt.VALID_CACHE, False)]


def test_no_timing_cache_file_starts_a_fresh_one(build, capsys):
    trt, cache = build()
    assert capsys.readouterr().err == "" and cache.read_bytes() == fake_tensorrt.VALID_CACHE


def test_tensorrt_11_builds_without_the_deprecated_strongly_typed_flag(build):
    trt, _ = build(version="11.1.0.7")
    assert ("create_network", 0) in trt.calls and ("build_serialized_network", None) in trt.calls


def test_tensorrt_10_passes_strongly_typed_and_refuses_a_network_without_it(build):
    trt, _ = build(version="10.9.0.34")
    assert ("create_network", 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)) in trt.calls
    with pytest.raises(builder.EngineBuildError, match="did not keep NetworkDefinitionCreationFlag.STRONGLY_TYPED"):
        build(version="10.9.0.34", network_keeps_flag=False)


@pytest.mark.parametrize("version", ["10.9.0.34", "11.1.0.7"])
def test_a_weak_typing_builder_flag_is_refused(build, version):
    with pytest.raises(builder.EngineBuildError, match="builder flag.s. FP16 set"):
        build(version=version, config_flags=("FP16",))


# ---------------------------------------------------------------- backend: buckets, graphs, return values

class _Stream:
    cuda_stream = 0

    def synchronize(self):
        pass

    def wait_stream(self, other):
        pass


class _Graph:
    """Stands for torch.cuda.CUDAGraph: remembers the context captured and its shapes at capture; a replay
    asserts they are unchanged (TensorRT does not promise a graph survives a shape change), then runs it."""
    replays: list

    def __init__(self):
        self.captured = None

    def replay(self):
        ctx, shapes = self.captured
        assert ctx.shapes == shapes, f"replay of a graph captured at {shapes} on a context now at {ctx.shapes}"
        self.replays.append(ctx.index)
        ctx.execute_async_v3(0)


@pytest.fixture
def backend(monkeypatch):
    """backend(max_batch=8, cuda_graph=False, refuse=()) -> (TensorRTBackend on CPU buffers, stand-in engine)."""
    monkeypatch.setattr(torch.cuda, "stream", lambda stream=None: contextlib.nullcontext())
    monkeypatch.setattr(torch.cuda, "device", lambda device=None: contextlib.nullcontext())
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: _Stream())
    trt = fake_tensorrt.install(monkeypatch)
    _Graph.replays = []

    @contextlib.contextmanager
    def capture(graph, stream=None):
        start = len(trt.calls)
        yield
        [(_, (index, _))] = [c for c in trt.calls[start:] if c[0] == "execute_async_v3"]
        ctx = engine.contexts[index]
        graph.captured = (ctx, dict(ctx.shapes))
    monkeypatch.setattr(torch.cuda, "CUDAGraph", _Graph)
    monkeypatch.setattr(torch.cuda, "graph", capture)
    engine = None

    def make(max_batch=8, cuda_graph=False, refuse=()):
        nonlocal engine
        engine = fake_tensorrt.FakeEngine(trt, max_batch, set(refuse))
        b = object.__new__(tb.TensorRTBackend)
        b.weights, b.engine_path, b.device = None, Path("hida_fp16.plan"), torch.device("cpu")
        b.height, b.width, b.max_batch, b.use_cuda_graph = H, W, max_batch, cuda_graph
        b.buckets, b._buckets, b._lock = tb.batch_buckets(max_batch), {}, threading.Lock()
        b.engine, b.stream = engine, _Stream()
        b._dtypes = {name: torch.float32 for name in (*tb.INPUT_NAMES, tb.OUTPUT_NAME)}
        return b, engine
    return make


def _inputs(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 3, H, W, generator=g) * 2 - 1, torch.rand(n, 1, H, W, generator=g),
            torch.softmax(torch.randn(n, 3, generator=g), dim=1))


def _expected(photo, depth, style):
    return photo.mean(dim=1, keepdim=True) + depth + style.sum(dim=1)[:, None, None, None]


def test_batch_buckets():
    assert tb.batch_buckets(1) == (1,) and tb.batch_buckets(8) == (1, 2, 4, 8) and tb.batch_buckets(6) == (1, 2, 4, 6)
    assert [tb.bucket_for(n, (1, 2, 4, 6)) for n in range(1, 7)] == [1, 2, 4, 4, 6, 6]


@pytest.mark.parametrize("cuda_graph", [False, True])
def test_each_bucket_has_one_context_whose_shape_never_changes(backend, cuda_graph):
    b, engine = backend(max_batch=8, cuda_graph=cuda_graph)
    for seed, n in enumerate([1, 3, 1, 8, 2, 5, 11, 3, 1]):
        photo, depth, style = _inputs(n, seed)
        got = b.run(photo, depth, style)
        torch.testing.assert_close(got, _expected(photo, depth, style), msg=f"batch {n}")
    # Buckets 1, 4, 8 and 2 were used (11 ran as 8 + 3): one context each, shapes set once, never changed.
    assert sorted(b._buckets) == [1, 2, 4, 8] and len(engine.contexts) == 4
    for ctx in engine.contexts:
        batches = {shape[0] for _, shape in ctx.shape_calls}
        assert len(ctx.shape_calls) == 3 and len(batches) == 1, ctx.shape_calls
    if cuda_graph:
        # Every run after a bucket's capture is a replay (9 runs + one extra chunk, 4 of them captures).
        assert len(_Graph.replays) == 10


def test_padding_rows_are_zeroed_and_never_leak(backend):
    b, _ = backend(max_batch=8)
    b.run(*_inputs(4, 0))                    # fills bucket 4
    photo, depth, style = _inputs(3, 1)
    got = b.run(photo, depth, style)         # bucket 4 again, one padding row
    torch.testing.assert_close(got, _expected(photo, depth, style))
    bucket = b._buckets[4]
    assert got.shape == (3, 1, H, W)
    assert all(not buf[3:].any() for buf in bucket.inputs)


@pytest.mark.parametrize("refuse, what", [
    (("set_input_shape", "depth"), "TensorRT refused input shape depth (1, 1, 256, 256)"),
    (("set_tensor_address", "sketch"), "TensorRT refused the address of tensor sketch"),
])
def test_a_refused_shape_or_address_is_one_line(backend, refuse, what):
    b, _ = backend(refuse={refuse})
    with pytest.raises(BackendUnavailable) as e:
        b.run(*_inputs(1, 0))
    assert str(e.value) == f"hida_fp16.plan: {what}" + (" (the engine takes batch 1..8)" if "shape" in what else "")


def test_memory_report_names_the_cost_per_bucket(backend):
    b, _ = backend(max_batch=8)
    b.run(*_inputs(3, 0))
    report = b.memory_report()
    assert report == {"activation_bytes_per_context": 1 << 20, "buffer_bytes_per_image": 5 * H * W * 4 + 12,
                      "buckets": [1, 2, 4, 8], "made": [4]}


# ---------------------------------------------------------------- the engine's first-use self-check

@pytest.fixture
def engine_cache(monkeypatch, tmp_path):
    from hida_rt import self_check as verdicts
    monkeypatch.setenv("HIDA_RT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(verdicts, "_probed", set())
    return tmp_path / "cache"


def _with_manifest(b, built_manifest, weights):
    from hida_rt.checkpoint import file_sha256
    b.manifest = built_manifest(weights_sha256=file_sha256(weights), height=H, width=W)
    b.weights, b._trt = weights, sys.modules["tensorrt"]
    return b


def test_an_engine_that_differs_from_eager_fails_its_self_check(backend, built_manifest, spread_ckpt,
                                                                 engine_cache, capsys):
    b, engine = backend(max_batch=4)
    _with_manifest(b, built_manifest, spread_ckpt)
    verdict = b.verify_here()
    assert not verdict.passed
    padded, network = verdict.checks
    assert padded["name"] == "batch of 3 vs each image alone" and padded["passed"]   # bucket 4, one padding row
    assert network["kind"] == "network" and not network["passed"] and network["figures"]["mean_abs_01"] > 5e-3
    assert "checking the tensorrt backend" in capsys.readouterr().err
    # Cached: the next load reads the verdict, probing nothing.
    runs = len(engine.trt.calls)
    assert b.verify_here() == verdict and len(engine.trt.calls) == runs
    # A recheck in a new process probes again (once per process: its own probe is fresh already).
    assert b.verify_here(recheck=True) == verdict and len(engine.trt.calls) == runs
    from hida_rt import self_check as verdicts
    verdicts._probed.clear()
    rechecked = b.verify_here(recheck=True)
    assert not rechecked.passed and rechecked.created >= verdict.created and len(engine.trt.calls) > runs


def test_an_engine_equal_to_eager_passes(backend, built_manifest, spread_ckpt, spread_model, engine_cache,
                                         monkeypatch):
    b, _ = backend(max_batch=4)
    _with_manifest(b, built_manifest, spread_ckpt)
    monkeypatch.setattr(b, "_run", lambda photo, depth, style: spread_model(photo, depth, style))
    verdict = b.verify_here()
    assert verdict.passed and [c["kind"] for c in verdict.checks] == ["engine", "network"], verdict.checks
    assert verdict.key["engine_sha256"] == b.manifest.engine_sha256 and verdict.key["tensorrt"] == "10.9.0.34"


def test_without_the_weights_only_the_engine_itself_is_checked(backend, built_manifest, spread_ckpt, engine_cache,
                                                               tmp_path):
    b, _ = backend(max_batch=4)
    _with_manifest(b, built_manifest, spread_ckpt)
    other = tmp_path / "other.pth"
    other.write_bytes(spread_ckpt.read_bytes() + b"\0")   # not the weights the engine was built from
    b.weights = other
    verdict = b.verify_here()
    assert verdict.passed and len(verdict.checks) == 1 and "no eager comparison" in verdict.note


def test_a_failing_engine_is_refused_at_load(backend, built_manifest, spread_ckpt, engine_cache, monkeypatch):
    b, engine = backend(max_batch=4)
    from hida_rt.checkpoint import file_sha256
    manifest = built_manifest(height=H, width=W, weights_sha256=file_sha256(spread_ckpt))
    monkeypatch.setattr(tb, "_check_engine", lambda engine_, device: (manifest, torch.device("cpu"), []))

    def load(self):
        self._trt, self.engine, self.stream = sys.modules["tensorrt"], engine, _Stream()
        self._dtypes = {name: torch.float32 for name in (*tb.INPUT_NAMES, tb.OUTPUT_NAME)}
    monkeypatch.setattr(tb.TensorRTBackend, "_load", load)
    with pytest.raises(BackendUnavailable) as e:
        tb.TensorRTBackend(spread_ckpt, engine="hida_fp16.plan", verify_hash=False)
    message = str(e.value)
    assert message.startswith("tensorrt backend: hida_fp16.plan did not pass its self-check: failed on cpu")
    assert "engine vs eager fp32, batch 3: max_abs" in message and "FAILED" in message and "\n" not in message
