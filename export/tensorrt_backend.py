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

`cuda_graph=True` captures one CUDA graph per batch size on first use and
replays it afterwards (static input/output buffers), removing the per-layer
launch overhead that dominates batch-1 latency.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

from hida_rt.backends.base import Backend
from hida_rt.backends.devices import parse_device
from hida_rt.errors import BackendUnavailable, HidaError, InputError

from . import manifest as mf
from .tensorrt_builder import environment

BUILD_HINT = "build one with: python -m hida_rt.build --weights W -o engines/hida_fp16.plan"
INPUT_NAMES = ("photo", "depth", "style")
OUTPUT_NAME = "sketch"


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
                 **options):
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
        self._graphs: dict[int, tuple] = {}
        self._load()

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
            self.context = self.engine.create_execution_context()
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

    def _bind(self, photo, depth, style, out) -> None:
        ctx = self.context
        for name, t in zip(INPUT_NAMES, (photo, depth, style)):
            ctx.set_input_shape(name, tuple(t.shape))
            ctx.set_tensor_address(name, t.data_ptr())
        ctx.set_tensor_address(OUTPUT_NAME, out.data_ptr())

    def _execute(self, photo, depth, style) -> torch.Tensor:
        n = photo.shape[0]
        out = torch.empty(n, 1, self.height, self.width, device=self.device, dtype=self._dtypes[OUTPUT_NAME])
        self._bind(photo, depth, style, out)
        if not self.context.execute_async_v3(self.stream.cuda_stream):
            raise BackendUnavailable(f"{self.engine_path}: TensorRT failed to enqueue the engine")
        return out

    def _graph_for(self, n: int) -> tuple:
        if n not in self._graphs:
            bufs = [torch.zeros(n, c, self.height, self.width, device=self.device, dtype=self._dtypes[name])
                    for name, c in (("photo", 3), ("depth", 1))]
            bufs.append(torch.zeros(n, 3, device=self.device, dtype=self._dtypes["style"]))
            with torch.cuda.stream(self.stream):
                out = self._execute(*bufs)  # one enqueue before capture: TensorRT finishes its lazy setup
                self.stream.synchronize()
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph, stream=self.stream):
                    out = self._execute(*bufs)
            self._graphs[n] = (graph, bufs, out)
        return self._graphs[n]

    def _run_chunk(self, photo, depth, style) -> torch.Tensor:
        n = photo.shape[0]
        if self.use_cuda_graph:
            graph, bufs, out = self._graph_for(n)
            with torch.cuda.stream(self.stream):
                for buf, t in zip(bufs, (photo, depth, style)):
                    buf.copy_(t, non_blocking=True)
                graph.replay()
                result = out.clone()
        else:
            with torch.cuda.stream(self.stream):
                result = self._execute(photo, depth, style)
        self.stream.synchronize()
        return result

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
        chunks = [self._run_chunk(*(t[i:i + self.max_batch] for t in prepared))
                  for i in range(0, photo.shape[0], self.max_batch)]
        return torch.cat(chunks).float()


BACKEND = TensorRTBackend
