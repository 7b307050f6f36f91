"""TensorRT: a prebuilt FP16 engine (python -m hida_rt.build) with the hida_rt AOT plugins, on a GPU.

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

from ..errors import BackendUnavailable, HidaError, InputError
from .base import Backend

BUILD_HINT = "build one with: python -m hida_rt.build --weights W -o engines/hida_fp16.plan"
INPUT_NAMES = ("photo", "depth", "style")
OUTPUT_NAME = "sketch"


def _manifest_module():
    from hida_rt.export import manifest
    return manifest


def _load_manifest(engine: str | Path):
    """The engine's manifest, after the file checks that need no TensorRT (raises HidaError)."""
    m = _manifest_module()
    engine = Path(engine)
    if engine.is_dir():
        raise InputError(f"{engine}: is a directory; pass the .plan file as --engine")
    if not engine.is_file():
        manifest_file = m.manifest_path(engine)
        if manifest_file.is_file() and m.read_manifest(manifest_file).status != "built":
            return m.read_manifest(manifest_file)  # check_runnable explains how to finish the build
        raise InputError(f"{engine}: no such engine file ({BUILD_HINT})")
    return m.read_manifest(m.manifest_path(engine))


class TensorRTBackend(Backend):
    name = "tensorrt"

    def __init__(self, weights=None, engine=None, device=None, cuda_graph: bool = False, verify_hash: bool = True,
                 **options):
        super().__init__(weights)
        reason = self.unavailable_reason(engine=engine, device=device)
        if reason:
            raise BackendUnavailable(f"tensorrt backend: {reason}")
        m = _manifest_module()
        from hida_rt.export.tensorrt_builder import environment
        self.engine_path = Path(engine)
        self.manifest = _load_manifest(engine)
        self.device = torch.device(device if device not in (None, "auto") else "cuda")
        for line in m.check_runnable(self.manifest, environment(self.device), self.engine_path):
            print(f"hida_rt: warning: {line}", file=sys.stderr)
        if verify_hash:
            m.check_engine_file(self.engine_path, self.manifest)
        self.height, self.width = self.manifest.height, self.manifest.width
        self.max_batch = self.manifest.max_batch()
        self.use_cuda_graph = cuda_graph
        self._graphs: dict[int, tuple] = {}
        self._load()

    def _load(self) -> None:
        import tensorrt as trt
        try:  # AOT plugin layers carry their PTX; registering the Python side too is harmless and cheap
            from hida_rt.export.plugins import tensorrt_qdp  # noqa: F401
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
        if not engine:
            return f"no engine given: pass --engine PLAN ({BUILD_HINT})"
        try:
            kind = torch.device(device).type if device not in (None, "auto") else "cuda"
        except RuntimeError:
            return f"unknown device {device!r}; TensorRT engines run on cuda or cuda:N"
        if kind != "cuda":
            return f"TensorRT engines run on a CUDA GPU, not on --device {device}"
        try:
            manifest = _load_manifest(engine)
            from hida_rt.export.tensorrt_builder import environment
            cuda = torch.device(device) if device not in (None, "auto") else None
            _manifest_module().check_runnable(manifest, environment(cuda), Path(engine))
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
