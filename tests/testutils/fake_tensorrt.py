"""A recording stand-in for the parts of `tensorrt` that export/tensorrt_builder.py and export/tensorrt_backend.py
call, answering as TensorRT's Python API does where it matters: `create_timing_cache` returns None for bytes it
cannot read, `set_timing_cache` returns False for a cache from another device or version, `set_input_shape` and
`set_tensor_address` return False on refusal (no exception), and `NetworkDefinitionCreationFlag.STRONGLY_TYPED`
is deprecated and ignored from 11.0 on (`get_flag` answers False there).

    trt = fake_tensorrt.install(monkeypatch, version="10.9.0.34")   # sys.modules["tensorrt"] is the stand-in
    trt.calls                                                       # [(what, details), ...] in call order

The execution context runs a tiny stand-in network on CPU tensors through
their addresses: sketch[i] = mean(photo[i], channels) + depth[i] + sum(style[i]),
so a test can check which rows of which buffers a run read and wrote.
"""
from __future__ import annotations

import ctypes
import enum
import sys
import types

import numpy as np

VALID_CACHE = b"timing-cache:this-gpu"
FOREIGN_CACHE = b"timing-cache:another-gpu"


class _Flag(enum.IntEnum):
    STRONGLY_TYPED = 5          # the 10.x number; 11.x keeps the member, deprecated and ignored


class _BuilderFlag(enum.IntEnum):
    FP16 = 0
    BF16 = 17
    INT8 = 1


class _LayerType(enum.IntEnum):
    CONVOLUTION = 0
    PLUGIN_V3 = 43


class _MemoryPoolType(enum.IntEnum):
    WORKSPACE = 0


class _Severity(enum.IntEnum):
    INTERNAL_ERROR = 0
    ERROR = 1
    WARNING = 2
    INFO = 3
    VERBOSE = 4


class _ILogger:
    Severity = _Severity

    def __init__(self, *args):
        pass


class _DType(enum.Enum):
    FLOAT = "float32"
    HALF = "float16"
    INT32 = "int32"


class FakeTimingCache:
    def __init__(self, data: bytes):
        self.data = data

    def serialize(self) -> bytes:
        return self.data or VALID_CACHE


class FakeTensor:
    def __init__(self, name, shape, dtype=_DType.FLOAT):
        self.name, self.shape, self.dtype = name, shape, dtype


class FakeLayer:
    def __init__(self, type_):
        self.type = type_


class FakeNetwork:
    def __init__(self, trt, flags: int):
        self.trt, self.flags = trt, flags
        self.inputs = [FakeTensor("photo", (-1, 3, 256, 256)), FakeTensor("depth", (-1, 1, 256, 256)),
                       FakeTensor("style", (-1, 3))]
        self.outputs = [FakeTensor("sketch", (-1, 1, 256, 256))]
        self.layers = [FakeLayer(_LayerType.CONVOLUTION), FakeLayer(_LayerType.PLUGIN_V3)]

    num_inputs = property(lambda self: len(self.inputs))
    num_outputs = property(lambda self: len(self.outputs))
    num_layers = property(lambda self: len(self.layers))

    def get_input(self, i):
        return self.inputs[i]

    def get_output(self, i):
        return self.outputs[i]

    def get_layer(self, i):
        return self.layers[i]

    def get_flag(self, flag) -> bool:
        if self.trt.major >= 11:
            return False  # deprecated and ignored: every network is strongly typed, the bit is not kept
        return bool(self.flags & (1 << int(flag)))


class FakeProfile:
    def __init__(self, trt):
        self.trt = trt

    def set_shape(self, name, lo, opt, hi):
        self.trt.calls.append(("profile.set_shape", (name, tuple(lo), tuple(opt), tuple(hi))))


class FakeConfig:
    def __init__(self, trt):
        self.trt = trt
        self.timing_cache = None
        self.flags: set = set()

    def create_timing_cache(self, data: bytes):
        data = bytes(data)
        self.trt.calls.append(("create_timing_cache", data))
        if data and not data.startswith(b"timing-cache:"):
            return None  # TensorRT: an unreadable (stale, corrupt) cache gives no object
        return FakeTimingCache(data)

    def set_timing_cache(self, cache, ignore_mismatch: bool) -> bool:
        self.trt.calls.append(("set_timing_cache", None if cache is None else cache.data, ignore_mismatch))
        if cache is None:
            raise TypeError("set_timing_cache(): incompatible function arguments")  # as pybind11 answers None
        if cache.data == FOREIGN_CACHE and not ignore_mismatch:
            return False
        self.timing_cache = cache
        return True

    def get_timing_cache(self):
        return self.timing_cache

    def set_memory_pool_limit(self, pool, size):
        self.trt.calls.append(("set_memory_pool_limit", size))

    def get_flag(self, flag) -> bool:
        return flag in self.flags

    def add_optimization_profile(self, profile):
        self.trt.calls.append(("add_optimization_profile", None))


class FakeBuilder:
    def __init__(self, trt, logger):
        self.trt = trt

    def create_network(self, flags: int = 0):
        self.trt.calls.append(("create_network", flags))
        self.network = FakeNetwork(self.trt, flags)
        return self.network

    def create_builder_config(self):
        self.config = FakeConfig(self.trt)
        self.trt.last_config = self.config
        return self.config

    def create_optimization_profile(self):
        return FakeProfile(self.trt)

    def build_serialized_network(self, network, config):
        self.trt.calls.append(("build_serialized_network", None))
        return b"fake-plan"


class FakeParser:
    num_errors = 0

    def __init__(self, network, logger):
        pass

    def parse_from_file(self, path) -> bool:
        return True


# ---------------------------------------------------------------- runtime

def _view(ptr: int, shape: tuple, dtype=np.float32) -> np.ndarray:
    count = int(np.prod(shape))
    buf = (ctypes.c_char * (count * np.dtype(dtype).itemsize)).from_address(ptr)
    return np.frombuffer(buf, dtype=dtype, count=count).reshape(shape)


class FakeContext:
    """Records its shapes and addresses; `refuse` names calls to answer False."""

    def __init__(self, engine, index: int):
        self.engine, self.index = engine, index
        self.shapes: dict[str, tuple] = {}
        self.addresses: dict[str, int] = {}
        self.shape_calls: list[tuple] = []

    def set_input_shape(self, name, shape) -> bool:
        self.shape_calls.append((name, tuple(shape)))
        self.engine.trt.calls.append(("set_input_shape", (self.index, name, tuple(shape))))
        if ("set_input_shape", name) in self.engine.refuse or shape[0] > self.engine.max_batch:
            return False
        self.shapes[name] = tuple(shape)
        return True

    def set_tensor_address(self, name, ptr) -> bool:
        self.engine.trt.calls.append(("set_tensor_address", (self.index, name)))
        if ("set_tensor_address", name) in self.engine.refuse:
            return False
        self.addresses[name] = ptr
        return True

    def execute_async_v3(self, stream) -> bool:
        self.engine.trt.calls.append(("execute_async_v3", (self.index, self.shapes["photo"][0])))
        n, _, h, w = self.shapes["photo"]
        photo = _view(self.addresses["photo"], (n, 3, h, w))
        depth = _view(self.addresses["depth"], (n, 1, h, w))
        style = _view(self.addresses["style"], (n, 3))
        out = _view(self.addresses["sketch"], (n, 1, h, w))
        out[:] = photo.mean(axis=1, keepdims=True) + depth + style.sum(axis=1)[:, None, None, None]
        return True


class FakeEngine:
    def __init__(self, trt, max_batch: int = 8, refuse: set | None = None):
        self.trt, self.max_batch, self.refuse = trt, max_batch, refuse or set()
        self.contexts: list[FakeContext] = []
        self.device_memory_size_v2 = 1 << 20

    def create_execution_context(self):
        ctx = FakeContext(self, len(self.contexts))
        self.contexts.append(ctx)
        return ctx


def install(monkeypatch, version: str = "10.9.0.34") -> types.ModuleType:
    """Put the stand-in in sys.modules as `tensorrt` for this test; returns it."""
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version
    trt.major = int(version.split(".")[0])
    trt.calls = []
    trt.NetworkDefinitionCreationFlag = _Flag
    trt.BuilderFlag = _BuilderFlag
    trt.LayerType = _LayerType
    trt.MemoryPoolType = _MemoryPoolType
    trt.ILogger = _ILogger
    trt.Logger = type("Logger", (_ILogger,), {"WARNING": _Severity.WARNING})
    trt.Builder = lambda logger: FakeBuilder(trt, logger)
    trt.OnnxParser = FakeParser
    trt.float32, trt.float16, trt.int32 = _DType.FLOAT, _DType.HALF, _DType.INT32
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    return trt
