"""Build a TensorRT engine from the TensorRT ONNX: strongly typed, FP16 as the graph says, AOT plugins.

    missing = missing_for_build()            # None, or why this machine cannot build
    engine = build_engine("engines/hida_fp16.trt.onnx", "engines/hida_fp16.plan",
                          BuildSettings(max_batch=8), progress=print)

Works with TensorRT 10.9+ and 11.x. Enum members are looked up by name
(their numbers moved between 10 and 11). The network must be strongly
typed, so the FP16/FP32 split of the graph (export/trt_fp16.py) is what
runs and TensorRT picks no precision of its own: on 10.x that takes
NetworkDefinitionCreationFlag.STRONGLY_TYPED at creation, checked with
`get_flag` after parsing; in 11.x every network is strongly typed, and the
flag is still in the enum but deprecated and ignored (NvInfer.h), so neither
passed nor checked there. On every version no weak-typing builder flag
(FP16, BF16, INT8, FP8, FP4) may be set on the config: that is what
strong typing means to the builder, and it is checked before the build
(`check_strongly_typed`). The hida_rt plugins are registered
(export/plugins/tensorrt_qdp.py) before the ONNX parser meets their nodes;
each node asks for its AOT implementation.

An optimization profile spans batch 1..max_batch (opt: opt_batch) at the
fixed height x width of the ONNX. A timing cache file (default
`<engine stem>.timing.cache` beside the engine) is read before and written
after the build, so rebuilding on the same GPU skips kernel timing. A cache
TensorRT cannot read (`create_timing_cache` gives None: corrupt, or from
another TensorRT) or will not use (`set_timing_cache` answers False: from
another GPU) is replaced by a fresh one, said in one line, and overwritten
after the build.
"""
from __future__ import annotations

import importlib.util
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from hida_rt.cli import atomic_path
from hida_rt.errors import HidaError

from .manifest import Environment

MIN_TENSORRT = (10, 9)
_DTYPES = {"FLOAT": "float32", "HALF": "float16", "INT32": "int32", "INT64": "int64", "BOOL": "bool"}


class EngineBuildError(HidaError):
    """TensorRT refused the network or failed to build it."""


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for p in version.split("."):
        digits = "".join(ch for ch in p if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def tensorrt_version() -> str | None:
    """The installed TensorRT's version, or None when `import tensorrt` does not work here."""
    if importlib.util.find_spec("tensorrt") is None:
        return None
    try:
        import tensorrt
        return str(tensorrt.__version__)
    except Exception:  # the index's placeholder packages fail at import; that is "not installed" too
        return None


def gpu(device=None) -> tuple[str, str] | None:
    """(name, "major.minor" compute capability) of a CUDA device (default: the current one), or None."""
    try:
        import torch
        if not torch.cuda.is_available():
            return None
        major, minor = torch.cuda.get_device_capability(device)
        return torch.cuda.get_device_name(device), f"{major}.{minor}"
    except Exception:
        return None


def cuda_version() -> str | None:
    try:
        import torch
        return torch.version.cuda
    except Exception:
        return None


def environment(device=None) -> Environment:
    """The running machine's TensorRT version and GPU (`device`: a CUDA device, default the current one)."""
    from .plugins.ptx_isa import driver_cuda_version
    g = gpu(device)
    return Environment(tensorrt_version=tensorrt_version(), gpu_name=g[0] if g else None,
                       compute_capability=g[1] if g else None,
                       driver_cuda_version=driver_cuda_version() if g else None)


def missing_for_build(env: Environment | None = None) -> str | None:
    """Why an engine cannot be built here (one phrase), or None if it can."""
    env = env or environment()
    if env.tensorrt_version is None:
        return "TensorRT is not installed (pip install 'hida_rt[tensorrt]', TensorRT >= 10.9)"
    if _version_tuple(env.tensorrt_version)[:2] < MIN_TENSORRT:
        return (f"TensorRT {env.tensorrt_version} is older than {'.'.join(map(str, MIN_TENSORRT))}, "
                f"the first with AOT Python plugins")
    if env.gpu_name is None:
        return "no CUDA GPU is visible (TensorRT builds for the GPU it runs on)"
    return None


def enum_member(enum, name: str):
    """enum.<name>, or None where this TensorRT has no such member."""
    return getattr(enum, name, None)


# Builder flags that let TensorRT choose a layer's precision: a strongly typed network must have none.
WEAK_TYPING_FLAGS = ("FP16", "BF16", "INT8", "FP8", "FP4")


def _strongly_typed_flag(trt):
    """NetworkDefinitionCreationFlag.STRONGLY_TYPED where it means something (10.x), else None (11.x keeps
    the member, deprecated and ignored: networks are always strongly typed there)."""
    if _version_tuple(str(trt.__version__))[:1] >= (11,):
        return None
    return enum_member(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED")


def network_flags(trt) -> int:
    """Creation flags of a strongly typed network: STRONGLY_TYPED on 10.x, none on 11.x (the default there)."""
    strongly_typed = _strongly_typed_flag(trt)
    return 0 if strongly_typed is None else 1 << int(strongly_typed)


def check_strongly_typed(trt, network, config) -> None:
    """EngineBuildError unless the network is strongly typed: the 10.x creation flag took, and no builder
    flag gives TensorRT a precision choice."""
    flag = _strongly_typed_flag(trt)
    if flag is not None and not network.get_flag(flag):
        raise EngineBuildError(f"the network is not strongly typed: TensorRT {trt.__version__} did not keep "
                               f"NetworkDefinitionCreationFlag.STRONGLY_TYPED")
    weak = [name for name in WEAK_TYPING_FLAGS
            if (member := enum_member(trt.BuilderFlag, name)) is not None and config.get_flag(member)]
    if weak:
        raise EngineBuildError(f"builder flag(s) {', '.join(weak)} set: they let TensorRT choose precisions, "
                               f"which a strongly typed build must not")


def attach_timing_cache(config, cache_file: Path | None, say: Callable[[str], None]) -> None:
    """Give the build the cache in `cache_file`, or a fresh cache when there is none or TensorRT cannot use it.

    create_timing_cache returns None for bytes it cannot read (corrupt, another TensorRT version), and
    set_timing_cache returns False for a cache it will not use (another GPU); either way the file is not used
    and is overwritten with the new cache after the build. One line says so.
    """
    data = cache_file.read_bytes() if cache_file is not None and cache_file.is_file() else b""
    if data:
        cache = config.create_timing_cache(data)
        if cache is None:
            why = "TensorRT cannot read it (corrupt, or written by another TensorRT version)"
        elif not config.set_timing_cache(cache, False):
            why = "TensorRT will not use it (made on another GPU or with other settings)"
        else:
            return
        say(f"timing cache {cache_file}: {why}; starting a fresh one, written there after the build")
    cache = config.create_timing_cache(b"")
    if cache is None or not config.set_timing_cache(cache, False):
        raise EngineBuildError("TensorRT refused a fresh timing cache")


@dataclass
class BuildSettings:
    max_batch: int = 8
    opt_batch: int = 1
    timing_cache: Path | None = None
    workspace_mb: int | None = None
    verbose: bool = False


@dataclass
class BuiltEngine:
    plan: Path
    seconds: float
    inputs: list[dict]
    outputs: list[dict]
    tensorrt_version: str
    plugin_layers: int


def _logger(trt, verbose: bool, errors: list[str]):
    class Logger(trt.ILogger):
        def __init__(self):
            trt.ILogger.__init__(self)

        def log(self, severity, msg):
            if int(severity) <= int(trt.ILogger.Severity.ERROR):
                errors.append(msg)
            if verbose or int(severity) <= int(trt.ILogger.Severity.WARNING):
                print(f"  TensorRT [{severity.name}] {msg}", file=sys.stderr, flush=True)
    return Logger()


def _progress_monitor(trt, say: Callable[[str], None]):
    """Top-level build phases as progress lines (IProgressMonitor, TensorRT >= 10), or None."""
    base = getattr(trt, "IProgressMonitor", None)
    if base is None:
        return None

    class Monitor(base):
        def __init__(self):
            base.__init__(self)

        def phase_start(self, phase_name, parent_phase, num_steps):
            if parent_phase is None:
                say(f"TensorRT: {phase_name}")

        def step_complete(self, phase_name, step):
            return True  # never cancel

        def phase_finish(self, phase_name):
            pass
    return Monitor()


def _describe(tensor) -> dict:
    dtype = _DTYPES.get(tensor.dtype.name, tensor.dtype.name.lower())
    return {"name": tensor.name, "dtype": dtype, "shape": [int(d) for d in tensor.shape]}


def build_engine(trt_onnx: str | Path, plan: str | Path, settings: BuildSettings,
                 progress: Callable[[str], None] | None = None) -> BuiltEngine:
    """Parse, configure, build and write the engine; the timing cache is read and updated."""
    import tensorrt as trt

    from .plugins import tensorrt_qdp
    say = progress or (lambda _: None)
    t0 = time.perf_counter()
    errors: list[str] = []
    logger = _logger(trt, settings.verbose, errors)
    builder = trt.Builder(logger)
    network = builder.create_network(network_flags(trt))
    parser = trt.OnnxParser(network, logger)
    say(f"parsing {trt_onnx} ({len(tensorrt_qdp.REGISTERED)} hida_rt AOT plugins registered)")
    if not parser.parse_from_file(str(trt_onnx)):
        first = parser.get_error(0).desc() if parser.num_errors else (errors[0] if errors else "unknown error")
        raise EngineBuildError(f"{trt_onnx}: TensorRT's ONNX parser failed: {first}")
    config = builder.create_builder_config()
    monitor = _progress_monitor(trt, say)
    if monitor is not None:
        config.progress_monitor = monitor
    if settings.workspace_mb:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, settings.workspace_mb << 20)
    cache_file = settings.timing_cache
    attach_timing_cache(config, cache_file, lambda line: print(f"hida_rt: {line}", file=sys.stderr, flush=True))
    profile = builder.create_optimization_profile()
    for i in range(network.num_inputs):
        t = network.get_input(i)
        dims = list(t.shape)

        def at(n, dims=dims):
            return [n if d == -1 else d for d in dims]
        profile.set_shape(t.name, at(1), at(settings.opt_batch), at(settings.max_batch))
    config.add_optimization_profile(profile)
    inputs = [_describe(network.get_input(i)) for i in range(network.num_inputs)]
    outputs = [_describe(network.get_output(i)) for i in range(network.num_outputs)]
    plugin_type = enum_member(trt.LayerType, "PLUGIN_V3")
    plugin_layers = sum(network.get_layer(i).type == plugin_type for i in range(network.num_layers))
    check_strongly_typed(trt, network, config)
    say(f"building for batch 1..{settings.max_batch} (opt {settings.opt_batch}); {network.num_layers} layers, "
        f"{plugin_layers} of them hida_rt plugins")
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineBuildError(f"TensorRT could not build the engine: {errors[-1] if errors else 'see its log'}"
                               f" (rerun with --verbose)")
    plan = Path(plan)
    with atomic_path(plan) as tmp:
        tmp.write_bytes(bytes(serialized))
    if cache_file is not None:
        with atomic_path(cache_file) as tmp:
            tmp.write_bytes(bytes(config.get_timing_cache().serialize()))
    return BuiltEngine(plan=plan, seconds=time.perf_counter() - t0, inputs=inputs, outputs=outputs,
                       tensorrt_version=str(trt.__version__), plugin_layers=plugin_layers)
