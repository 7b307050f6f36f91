"""TensorRT: a prebuilt FP16 engine (python -m hida_rt.build) with the hida_rt AOT plugins, on a GPU.

Lives in hida_rt.export, beside the builder, manifest and plugins it reads;
hida_rt.backends finds it by name (BACKEND_MODULES).

    backend = create_backend("tensorrt", engine="engines/hida_fp16.plan")
    sketch = backend.run(photo, depth, style)        # torch (CPU or CUDA) or NumPy

Before anything is loaded, the engine's manifest (`<engine>.json`) is checked
against this machine: an unbuilt engine, another TensorRT version, another
GPU compute capability, a plan whose bytes differ from the one the manifest
describes, a missing or corrupt manifest are each refused in one line. The
engine takes FP32 photo/depth/style and returns the FP32 sketch (its FP16
casts are inside); batches larger than the engine's profile run in chunks.

Batch buckets: an execution context's input shape is set once and never
changed. Each batch size in `batch_buckets(max_batch)` (1, 2, 4, ... and the
engine's max batch) gets its own context, created on first use with its
static input/output buffers at that size; a batch of n runs on the smallest
bucket >= n, its inputs copied into the bucket's buffers and the padding rows
zeroed, and the first n rows of the output returned. TensorRT does not
promise that a CUDA graph captured at one shape survives a shape change, and
engines with AOT plugins leak a CUDA module on every input-shape change of a
context (TensorRT issue 4849): with buckets neither can happen, however the
batch varies (as the service's dynamic batching makes it). The cost is
memory: each bucket's context holds the engine's activation memory
(`ICudaEngine.device_memory_size_v2`, sized for the largest batch of the
profile) plus its buffers, (3 + 1 + 1) x H x W x 4 bytes per image of the
bucket; `memory_report()` gives the figures for a loaded engine. Only the
buckets a process has used exist.

Self-check per engine: the first time an engine is loaded on a combination
of GPU, driver, PyTorch, TensorRT and hida_rt version, it runs once on a
fresh random input: the batch's rows must be finite and equal to the same
images run alone (a bucket's padding must not change a result), and, when
the weights the engine was built from are given (`weights`, matched by
SHA-256 against the manifest), the sketch must meet the FP16 targets
against eager FP32. The verdict is cached like the triton backend's
(hida_rt.self_check; `recheck=True` probes again); a failing verdict
refuses the engine in one line with the figures.

`cuda_graph=True` captures one CUDA graph per bucket on first use and
replays it afterwards, removing the per-layer launch overhead that dominates
batch-1 latency. Every `set_input_shape` / `set_tensor_address` is checked:
a refusal is a one-line error naming the tensor, not a later enqueue failure.
"""
from __future__ import annotations

import random
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import torch

import hida_rt
from hida_rt import self_check as verdicts
from hida_rt.backends.base import Backend
from hida_rt.backends.devices import parse_device
from hida_rt.checkpoint import file_sha256
from hida_rt.errors import BackendUnavailable, HidaError, InputError

from . import manifest as mf
from . import trt_parity
from .tensorrt_builder import environment

BUILD_HINT = "build one with: python -m hida_rt.build --weights W -o engines/hida_fp16.plan"
INPUT_NAMES = ("photo", "depth", "style")
OUTPUT_NAME = "sketch"


def batch_buckets(max_batch: int) -> tuple[int, ...]:
    """The batch sizes the engine runs at: powers of two below max_batch, then max_batch."""
    sizes, b = [], 1
    while b < max_batch:
        sizes.append(b)
        b *= 2
    return (*sizes, max_batch)


def bucket_for(n: int, buckets: tuple[int, ...]) -> int:
    """The smallest bucket that holds a batch of n (n <= the largest bucket)."""
    return next(b for b in buckets if b >= n)


@dataclass
class Bucket:
    """One execution context whose input shapes were set once, at batch `size`, bound to these buffers."""
    size: int
    context: object
    inputs: list          # photo, depth, style: static buffers at `size` rows
    output: torch.Tensor
    graph: object = None  # torch.cuda.CUDAGraph, when captured


def _load_manifest(engine: Path) -> mf.Manifest:
    """The engine's manifest, after the file checks that need no TensorRT (raises HidaError)."""
    if engine.is_dir():
        raise InputError(f"{engine}: is a directory; pass the .plan file as --engine")
    manifest_file = mf.manifest_path(engine)
    if not engine.is_file():
        manifest = mf.read_manifest(manifest_file) if manifest_file.is_file() else None
        if manifest is not None and manifest.status != "built":
            return manifest  # check_runnable explains how to finish the build
        raise InputError(f"{engine}: no such engine file ({BUILD_HINT})")
    return mf.read_manifest(manifest_file)


def _check_engine(engine, device) -> tuple[mf.Manifest, torch.device | None, list[str]]:
    """(manifest, parsed device, warnings) of an engine that can run here; HidaError (one line) otherwise.

    Reads the manifest once and probes the machine once; loads nothing from TensorRT.
    """
    if not engine:
        raise BackendUnavailable(f"no engine given: pass --engine PLAN ({BUILD_HINT})")
    try:
        parsed = parse_device(device)
    except BackendUnavailable:
        raise BackendUnavailable(f"unknown device {device!r}; TensorRT engines run on cuda or cuda:N") from None
    if parsed is not None and parsed.type != "cuda":
        raise BackendUnavailable(f"TensorRT engines run on a CUDA GPU, not on --device {device}")
    manifest = _load_manifest(Path(engine))
    warnings = mf.check_runnable(manifest, environment(parsed), Path(engine))
    return manifest, parsed, warnings


class TensorRTBackend(Backend):
    name = "tensorrt"

    def __init__(self, weights=None, engine=None, device=None, cuda_graph: bool = False, verify_hash: bool = True,
                 recheck: bool = False, **options):
        super().__init__(weights)
        try:
            self.manifest, parsed, warnings = _check_engine(engine, device)
        except HidaError as e:
            raise BackendUnavailable(f"tensorrt backend: {e}") from None
        self.engine_path = Path(engine)
        self.device = parsed or torch.device("cuda")
        for line in warnings:
            print(f"hida_rt: warning: {line}", file=sys.stderr)
        if verify_hash:
            mf.check_engine_file(self.engine_path, self.manifest)
        self.height, self.width = self.manifest.height, self.manifest.width
        self.max_batch = self.manifest.max_batch()
        self.use_cuda_graph = cuda_graph
        self.buckets = batch_buckets(self.max_batch)
        self._buckets: dict[int, Bucket] = {}
        self._lock = threading.Lock()  # one run at a time: the buckets' buffers are shared state
        self._load()
        verdict = self.verify_here(recheck)
        if not verdict.passed:
            raise BackendUnavailable(f"tensorrt backend: {self.engine_path} did not pass its self-check: "
                                     f"{verdict.summary()}; `python -m hida_rt.doctor` lists every figure, "
                                     f"--recheck probes again")

    def _load(self) -> None:
        import tensorrt as trt
        try:  # AOT plugin layers carry their PTX; registering the Python side too is harmless and cheap
            from .plugins import tensorrt_qdp  # noqa: F401
        except ImportError:
            pass
        self._trt = trt
        self._logger = trt.Logger(trt.Logger.WARNING)
        with torch.cuda.device(self.device):
            runtime = trt.Runtime(self._logger)
            self.engine = runtime.deserialize_cuda_engine(self.engine_path.read_bytes())
            if self.engine is None:
                raise BackendUnavailable(f"{self.engine_path}: TensorRT could not deserialize the engine")
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        missing = [n for n in (*INPUT_NAMES, OUTPUT_NAME) if n not in names]
        if missing:
            raise BackendUnavailable(f"{self.engine_path}: not a HIDA engine (no tensor {', '.join(missing)})")
        self._dtypes = {n: self._torch_dtype(self.engine.get_tensor_dtype(n)) for n in names}
        self.stream = torch.cuda.Stream(self.device)

    def _torch_dtype(self, dt) -> torch.dtype:
        trt = self._trt
        table = {trt.float32: torch.float32, trt.float16: torch.float16, trt.int32: torch.int32}
        if dt not in table:
            raise BackendUnavailable(f"{self.engine_path}: engine tensor type {dt} is not one hida_rt feeds")
        return table[dt]

    @classmethod
    def unavailable_reason(cls, engine=None, device=None, **options) -> str | None:
        try:
            _check_engine(engine, device)
        except HidaError as e:
            return str(e)
        return None

    # ---------------------------------------------------------------- running

    def _checked(self, ok, what: str) -> None:
        """TensorRT answers False (not an exception) when it refuses a shape or an address: say so here."""
        if not ok:
            raise BackendUnavailable(f"{self.engine_path}: TensorRT refused {what}")

    def _new_bucket(self, size: int) -> Bucket:
        """A context with its input shapes set, once, to batch `size`, bound to static buffers of that size."""
        with torch.cuda.device(self.device):
            context = self.engine.create_execution_context()
        if context is None:
            raise BackendUnavailable(f"{self.engine_path}: TensorRT could not create an execution context for batch "
                                     f"{size} (out of GPU memory?)")
        inputs = [torch.zeros(size, c, self.height, self.width, device=self.device, dtype=self._dtypes[name])
                  for name, c in (("photo", 3), ("depth", 1))]
        inputs.append(torch.zeros(size, 3, device=self.device, dtype=self._dtypes["style"]))
        output = torch.empty(size, 1, self.height, self.width, device=self.device, dtype=self._dtypes[OUTPUT_NAME])
        for name, t in zip(INPUT_NAMES, inputs):
            self._checked(context.set_input_shape(name, tuple(t.shape)),
                          f"input shape {name} {tuple(t.shape)} (the engine takes batch 1..{self.max_batch})")
        for name, t in (*zip(INPUT_NAMES, inputs), (OUTPUT_NAME, output)):
            self._checked(context.set_tensor_address(name, t.data_ptr()), f"the address of tensor {name}")
        bucket = Bucket(size, context, inputs, output)
        if self.use_cuda_graph:
            with torch.cuda.stream(self.stream):
                self._enqueue(bucket)  # one enqueue before capture: TensorRT finishes its lazy setup
                self.stream.synchronize()
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph, stream=self.stream):
                    self._enqueue(bucket)
            bucket.graph = graph
        return bucket

    def _bucket(self, n: int) -> Bucket:
        size = bucket_for(n, self.buckets)
        if size not in self._buckets:
            self._buckets[size] = self._new_bucket(size)
        return self._buckets[size]

    def _enqueue(self, bucket: Bucket) -> None:
        if not bucket.context.execute_async_v3(self.stream.cuda_stream):
            raise BackendUnavailable(f"{self.engine_path}: TensorRT failed to enqueue the engine")

    def _run_chunk(self, photo, depth, style) -> torch.Tensor:
        n = photo.shape[0]
        bucket = self._bucket(n)
        with torch.cuda.stream(self.stream):
            for buf, t in zip(bucket.inputs, (photo, depth, style)):
                buf[:n].copy_(t, non_blocking=True)
                if n < bucket.size:
                    buf[n:].zero_()  # padding rows: fixed content, so a run never depends on an earlier one
            if bucket.graph is not None:
                bucket.graph.replay()
            else:
                self._enqueue(bucket)
            result = bucket.output[:n].clone()  # the next run overwrites the bucket's output
        self.stream.synchronize()
        return result

    # ---------------------------------------------------------------- self-check

    def probe_key(self) -> dict:
        """What this engine's verdict holds for: the engine's bytes, the GPU, driver and versions."""
        from hida_rt import gpu_info
        if self.device.type == "cuda":
            index = self.device.index if self.device.index is not None else torch.cuda.current_device()
            major, minor = torch.cuda.get_device_capability(index)
            gpu, cc, driver = torch.cuda.get_device_name(index), f"{major}.{minor}", gpu_info.driver_version()
        else:
            gpu, cc, driver = str(self.device), None, None
        return dict(engine_sha256=self.manifest.engine_sha256, gpu=gpu, compute_capability=cc, driver=driver,
                    torch=torch.__version__, tensorrt=str(getattr(self._trt, "__version__", None)),
                    hida_rt=hida_rt.__version__)

    def verify_here(self, recheck: bool = False):
        """This engine's self-check verdict here (hida_rt.self_check.Verdict): cached, or probed now."""
        return verdicts.checked(self.name, self.probe_key(), self._probe, recheck=recheck)

    def _matching_weights(self) -> Path | None:
        if self.weights is None or not self.weights.is_file() or not self.manifest.weights_sha256:
            return None
        return self.weights if file_sha256(self.weights) == self.manifest.weights_sha256 else None

    @torch.inference_mode()
    def _probe(self) -> tuple[list[dict], str]:
        seed = random.SystemRandom().randrange(2**31)
        n = min(3, self.max_batch)  # a padded bucket when the engine allows batch 4
        _, photo, depth, style = trt_parity.random_inputs(n, self.height, self.width, seed=seed)
        batch = self._run(photo, depth, style).float().cpu()
        alone = torch.cat([self._run(photo[i:i + 1], depth[i:i + 1], style[i:i + 1]).float().cpu()
                           for i in range(n)])
        finite = int((~torch.isfinite(batch)).sum())
        spread = float((batch - alone).abs().max()) if not finite else float("inf")
        checks = [dict(name=f"batch of {n} vs each image alone", kind="engine", passed=finite == 0 and spread <= 1e-3,
                       figures={"max_abs": spread, "nonfinite": finite}, limits="max |d| <= 0.001, no NaN/Inf")]
        weights = self._matching_weights()
        if weights is None:
            return checks, (f"seed {seed}; no eager comparison: the weights this engine was built from were not "
                            f"given (--weights, matched by SHA-256)")
        from hida_rt.checkpoint import load_generator
        from hida_rt.kernels._common import ieee_fp32_convs
        model = load_generator(weights, self.device)
        with ieee_fp32_convs(True):
            want = model(photo.to(self.device), depth.to(self.device), style.to(self.device)).float().cpu()
        figures = trt_parity.compare(batch, want)
        figures.pop("elements")
        checks.append(dict(name=f"engine vs eager fp32, batch {n}", kind="network",
                           passed=trt_parity.meets(figures, "fp16"), figures=figures,
                           limits=trt_parity.targets("fp16")))
        return checks, f"seed {seed}"

    def memory_report(self) -> dict:
        """Bytes each bucket costs: the context's activation memory and its static buffers, and the buckets
        made so far."""
        activation = getattr(self.engine, "device_memory_size_v2", None)
        if activation is None:
            activation = getattr(self.engine, "device_memory_size", 0)
        per_image = 5 * self.height * self.width * 4 + 3 * 4
        return {"activation_bytes_per_context": int(activation), "buffer_bytes_per_image": per_image,
                "buckets": list(self.buckets), "made": sorted(self._buckets)}

    @torch.inference_mode()
    def _run(self, photo, depth, style):
        h, w = photo.shape[2:]
        if (h, w) != (self.height, self.width):
            raise InputError(f"this engine was built for {self.height}x{self.width} images, got {h}x{w}; "
                             f"resize, or build another engine with --height {h} --width {w}")
        prepared = [t.to(self.device, self._dtypes[name]).contiguous()
                    for name, t in zip(INPUT_NAMES, (photo, depth, style))]
        # The engine runs on its own stream: order it after the caller's work that made the inputs
        # (and after the previous call's cat, whose chunk memory this stream's allocator may reuse).
        self.stream.wait_stream(torch.cuda.current_stream(self.device))
        with self._lock:
            chunks = [self._run_chunk(*(t[i:i + self.max_batch] for t in prepared))
                      for i in range(0, photo.shape[0], self.max_batch)]
        return torch.cat(chunks).float()


BACKEND = TensorRTBackend
