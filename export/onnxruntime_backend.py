"""onnxruntime: the portable ONNX export (standard DeformConv) on CPU, or CUDA if asked.

The ONNX file is either given (`onnx=` / `--onnx`, exported for one
height x width) or exported from the weights on first use at the input's
size and cached in the user cache folder (onnx_cache), one file per weights and size. That first-use
export is why this backend lives in hida_rt.export, above the exporter it
calls; hida_rt.backends finds it by name (BACKEND_MODULES).

Device: None/"auto" uses the CUDA execution provider when this onnxruntime
build has it, else CPU; "cpu" forces CPU; "cuda" needs the CUDA provider
(the onnxruntime-gpu build). Nodes a provider lacks fall back to CPU.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch

from hida_rt.backends.base import Backend
from hida_rt.backends.devices import parse_device
from hida_rt.checkpoint import check_weights_file, file_sha256
from hida_rt.errors import BackendUnavailable, CheckpointError, InputError, MissingDependency, first_line

INPUT_NAMES = ("photo", "depth", "style")
OUTPUT_NAME = "sketch"
CPU, CUDA = "CPUExecutionProvider", "CUDAExecutionProvider"
INSTALL_HINT = "pip install 'onnxruntime>=1.31' (CPU) or onnxruntime-gpu (CUDA)"


def _available_providers() -> list[str]:
    import onnxruntime
    return onnxruntime.get_available_providers()


def pick_providers(device: str | None) -> list[str]:
    """Execution providers for `device`, best first; raises BackendUnavailable if it cannot be had."""
    parsed = parse_device(device)
    kind = parsed.type if parsed is not None else "auto"
    has_cuda = CUDA in _available_providers()
    if kind == "cuda" and not has_cuda:
        raise BackendUnavailable(f"--device {device} was asked for, but this onnxruntime has no "
                                 f"CUDAExecutionProvider (install onnxruntime-gpu)")
    if kind == "cpu" or not has_cuda:
        return [CPU]
    index = (parsed.index if parsed is not None else None) or 0
    return [(CUDA, {"device_id": index}), CPU]


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"

    def __init__(self, weights, device=None, onnx=None, threads: int | None = None, progress: bool = True,
                 cache_dir=None, **options):
        super().__init__(weights)
        if importlib.util.find_spec("onnxruntime") is None:
            raise MissingDependency(f"the onnxruntime backend needs onnxruntime: {INSTALL_HINT}")
        self.providers = pick_providers(device)
        self.threads, self.progress, self.cache_dir = threads, progress, cache_dir
        self.onnx = Path(onnx) if onnx else None
        self._sessions: dict[tuple[int, int], object] = {}
        if self.weights is not None:
            check_weights_file(self.weights)
        if self.onnx is None:
            if self.weights is None:
                raise CheckpointError("the onnxruntime backend needs --weights (exported to ONNX on first use) "
                                      "or --onnx with a file from python -m hida_rt.export")
        else:
            session = self._open(self.onnx)
            self._sessions[self._session_size(session)] = session
            self._check_source(session)

    @classmethod
    def unavailable_reason(cls, device=None, onnx=None, **options) -> str | None:
        if importlib.util.find_spec("onnxruntime") is None:
            return f"onnxruntime is not installed ({INSTALL_HINT})"
        if onnx is None and importlib.util.find_spec("onnx") is None:
            return "exporting the weights to ONNX needs the onnx package (pip install 'onnx>=1.16'), or pass --onnx"
        try:
            pick_providers(device)
        except BackendUnavailable as e:
            return str(e)
        return None

    @property
    def active_providers(self) -> list[str]:
        """Providers of the sessions opened so far (what actually runs)."""
        return sorted({p for s in self._sessions.values() for p in s.get_providers()})

    def _open(self, path: Path):
        import onnxruntime
        if not path.is_file():
            raise InputError(f"{path}: no such ONNX file (make one with: python -m hida_rt.export --weights W "
                             f"-o {path})")
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # warnings (e.g. nodes placed on CPU) would break one-line output
        if self.threads:
            options.intra_op_num_threads = self.threads
        try:
            session = onnxruntime.InferenceSession(str(path), options, providers=self.providers)
        except Exception as e:  # onnxruntime raises its own Fail/InvalidGraph/... types
            raise InputError(f"{path}: onnxruntime cannot load it ({first_line(e)})") from None
        names = tuple(i.name for i in session.get_inputs())
        outputs = tuple(o.name for o in session.get_outputs())
        if sorted(names) != sorted(INPUT_NAMES) or outputs != (OUTPUT_NAME,):
            raise InputError(f"{path}: not a HIDA export (inputs {', '.join(names)}; outputs {', '.join(outputs)}); "
                             f"make one with python -m hida_rt.export")
        return session

    @staticmethod
    def _session_size(session) -> tuple[int, int]:
        shape = next(i.shape for i in session.get_inputs() if i.name == "photo")
        if not all(isinstance(d, int) for d in shape[2:]):
            raise InputError("the ONNX file has a dynamic height/width; export one for a fixed size "
                             "(python -m hida_rt.export --height H --width W)")
        return int(shape[2]), int(shape[3])

    def _check_source(self, session) -> None:
        """Refuse an ONNX exported from other weights than --weights (its metadata records their hash)."""
        recorded = session.get_modelmeta().custom_metadata_map.get("hida_rt.weights_sha256")
        if self.weights is None or recorded is None:
            return
        if recorded != file_sha256(self.weights):
            raise InputError(f"{self.onnx} was exported from other weights than {self.weights}; "
                             f"re-export it (python -m hida_rt.export) or drop --onnx")

    @classmethod
    def prepare(cls, weights, height: int, width: int, progress: bool = True, onnx=None, **options) -> dict:
        if onnx is not None:
            return {}
        from .onnx_cache import cached_onnx
        return {"onnx": str(cached_onnx(weights, height, width, progress=progress))}

    def session_for(self, height: int, width: int):
        """The session for inputs of height x width (exporting and caching the ONNX if needed)."""
        if (height, width) in self._sessions:
            return self._sessions[(height, width)]
        if self.onnx is not None:
            (h, w), = self._sessions
            raise InputError(f"{self.onnx} was exported for {h}x{w} inputs, these are {height}x{width}; use "
                             f"--size {h} or re-export with --height {height} --width {width}")
        from .onnx_cache import cached_onnx  # onnx and torch.onnx load only when an export may be needed
        path = cached_onnx(self.weights, height, width, cache_dir=self.cache_dir, progress=self.progress)
        self._sessions[(height, width)] = self._open(path)
        return self._sessions[(height, width)]

    def _run(self, photo, depth, style):
        session = self.session_for(photo.shape[2], photo.shape[3])
        feed = {name: np.ascontiguousarray(t.detach().cpu().numpy(), dtype=np.float32)
                for name, t in zip(INPUT_NAMES, (photo, depth, style))}
        (sketch,) = session.run([OUTPUT_NAME], feed)
        return torch.from_numpy(sketch)


BACKEND = OnnxRuntimeBackend
