"""The served model as the Open Inference Protocol (KServe v2) sees it, and inference through the batcher.

Free of HTTP and gRPC: v2_rest and v2_grpc decode their wire formats into
NumPy arrays, call `infer`, and encode what it returns. The model's inputs and
outputs are read from the config.pbtxt text the Triton repository writer
(hida_rt.export.triton_repo) makes for the same network, so one client works
against hida_rt and against Triton Inference Server serving that repository.
The entry point builds the V2Model (core code does not import the export layer).
"""
from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .core import NetInput
from .errors import BadRequest, NotFound

# The protocol's tensor datatypes (Triton's model-config names without "TYPE_") and their NumPy types.
DATATYPES = {"BOOL": np.bool_, "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32, "UINT64": np.uint64,
             "INT8": np.int8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64, "FP16": np.float16,
             "FP32": np.float32, "FP64": np.float64}
SERVER_NAME = "hida_rt"
# What the protocol calls extensions, of those Triton lists: only these are implemented (docs/serve.md).
EXTENSIONS = ("binary_tensor_data", "model_configuration")
PLATFORM = "hida_rt"
# Request parameters of Triton's that ask for what this server does not do.
SEQUENCE_PARAMETERS = ("sequence_id", "sequence_start", "sequence_end")


@dataclass(frozen=True)
class TensorSpec:
    name: str
    datatype: str                # FP32, ...
    shape: tuple[int, ...]       # -1 for the batch (and any other variable dimension)

    def metadata(self) -> dict:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


@dataclass(frozen=True)
class V2Model:
    """Name, version, inputs/outputs and batch limit of the served model; plain data (pickled to Ray replicas)."""

    name: str
    version: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    max_batch_size: int
    config_text: str             # the config.pbtxt this model's metadata was read from (platform set to ours)
    config: dict                 # the same as Triton's HTTP API gives it (JSON)

    @classmethod
    def from_config_text(cls, text: str, version: str) -> V2Model:
        """Read inputs, outputs and max_batch_size from a Triton config.pbtxt (model_config.proto text)."""
        from google.protobuf import text_format
        from tritonclient.grpc import model_config_pb2

        config = text_format.Parse(text, model_config_pb2.ModelConfig())
        batch = (-1,) if config.max_batch_size > 0 else ()

        def specs(group) -> tuple[TensorSpec, ...]:
            return tuple(TensorSpec(t.name, model_config_pb2.DataType.Name(t.data_type).removeprefix("TYPE_"),
                                    batch + tuple(int(d) for d in t.dims)) for t in group)

        # Ours to say: this server is not the onnxruntime or TensorRT platform the repository names.
        config.platform = PLATFORM
        config.ClearField("default_model_filename")
        config.ClearField("instance_group")
        return cls(config.name, version, specs(config.input), specs(config.output), config.max_batch_size,
                   text_format.MessageToString(config), _config_json(config))

    def to_json(self) -> dict:
        return {"name": self.name, "version": self.version, "inputs": [t.metadata() for t in self.inputs],
                "outputs": [t.metadata() for t in self.outputs], "max_batch_size": self.max_batch_size,
                "config_text": self.config_text, "config": self.config}

    @classmethod
    def from_json(cls, d: dict) -> V2Model:
        def specs(group) -> tuple[TensorSpec, ...]:
            return tuple(TensorSpec(t["name"], t["datatype"], tuple(t["shape"])) for t in group)

        return cls(d["name"], d["version"], specs(d["inputs"]), specs(d["outputs"]), d["max_batch_size"],
                   d["config_text"], d["config"])

    def config_proto(self):
        from google.protobuf import text_format
        from tritonclient.grpc import model_config_pb2

        return text_format.Parse(self.config_text, model_config_pb2.ModelConfig())

    def config_json(self) -> dict:
        return self.config

    def metadata(self) -> dict:
        return {"name": self.name, "versions": [self.version], "platform": PLATFORM,
                "inputs": [t.metadata() for t in self.inputs], "outputs": [t.metadata() for t in self.outputs]}

    # -- requests --------------------------------------------------------------------------
    def check_target(self, name: str, version: str | None) -> None:
        """NotFound unless (name, version) is this model ("" or None: its one version)."""
        if name != self.name:
            raise NotFound(f"Request for unknown model: '{name}' is not found (this server has '{self.name}')")
        if version not in (None, "", self.version):
            raise NotFound(f"Request for unknown model: '{name}' version {version} is not found (it has version "
                           f"{self.version})")

    def input_spec(self, name: str) -> TensorSpec:
        for t in self.inputs:
            if t.name == name:
                return t
        raise BadRequest(f"unexpected inference input '{name}' for model '{self.name}' (it takes "
                         f"{', '.join(t.name for t in self.inputs)})")

    def output_names(self, requested: Sequence[str]) -> list[str]:
        """The outputs to answer with: those requested (checked), or all."""
        known = [t.name for t in self.outputs]
        for name in requested:
            if name not in known:
                raise BadRequest(f"unexpected inference output '{name}' for model '{self.name}' (it has "
                                 f"{', '.join(known)})")
        if len(set(requested)) != len(requested):
            raise BadRequest("an output is requested twice")
        return list(requested) or known

    def check_input_header(self, name: str, datatype: str, shape: Sequence[int]) -> TensorSpec:
        """The input's spec, once its datatype and shape (batch within max_batch_size) fit it."""
        spec = self.input_spec(name)
        if datatype != spec.datatype:
            raise BadRequest(f"inference input '{name}' data-type is '{datatype}', but model '{self.name}' "
                             f"expects '{spec.datatype}'")
        shape = tuple(shape)
        fits = len(shape) == len(spec.shape) and all(want in (-1, got) for want, got in zip(spec.shape, shape))
        if not fits or any(d < 0 for d in shape):
            raise BadRequest(f"unexpected shape for input '{name}' for model '{self.name}': expected "
                             f"{list(spec.shape)}, got {list(shape)}")
        if self.max_batch_size > 0:
            if shape[0] < 1:
                raise BadRequest(f"input '{name}': the batch size must be at least 1")
            if shape[0] > self.max_batch_size:
                raise BadRequest(f"inference request batch-size must be <= {self.max_batch_size} for "
                                 f"'{self.name}' (input '{name}' has {shape[0]})")
        return spec

    def check_inputs(self, arrays: Mapping[str, np.ndarray]) -> int:
        """All inputs given once, of one batch size, finite; the batch size."""
        missing = [t.name for t in self.inputs if t.name not in arrays]
        if missing:
            raise BadRequest(f"expected {len(self.inputs)} inputs but got {len(arrays)} inputs for model "
                             f"'{self.name}': missing {', '.join(repr(m) for m in missing)}")
        batches = {name: a.shape[0] for name, a in arrays.items()}
        if len(set(batches.values())) > 1:
            raise BadRequest("the inputs have different batch sizes ("
                             + ", ".join(f"{n} {b}" for n, b in batches.items()) + ")")
        for name, a in arrays.items():
            if a.dtype.kind == "f" and not np.isfinite(a).all():
                raise BadRequest(f"input '{name}' holds non-finite values (NaN or infinity)")
        return next(iter(batches.values()))


def _config_json(config) -> dict:
    """The model configuration as Triton's HTTP API gives it (protobuf's JSON, field names as in the .proto)."""
    from google.protobuf import json_format

    return _int64_as_numbers(config, json_format.MessageToDict(config, preserving_proto_field_name=True))


def _int64_as_numbers(message, data: dict) -> dict:
    """protobuf's JSON writes 64-bit integers as strings ("dims": ["3"]); Triton's config JSON has numbers."""
    from google.protobuf.descriptor import FieldDescriptor

    wide = {FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_SINT64,
            FieldDescriptor.TYPE_FIXED64, FieldDescriptor.TYPE_SFIXED64}
    for field, value in message.ListFields():
        key = field.name
        repeated = field.is_repeated if hasattr(field, "is_repeated") else field.label == FieldDescriptor.LABEL_REPEATED
        if field.message_type is not None:
            if field.message_type.GetOptions().map_entry:
                continue  # string-keyed maps of strings in model_config.proto: nothing to convert
            for sub, sub_data in (zip(value, data[key]) if repeated else [(value, data[key])]):
                _int64_as_numbers(sub, sub_data)
        elif field.type in wide:
            data[key] = [int(v) for v in data[key]] if repeated else int(data[key])
    return data


def array_from_bytes(spec: TensorSpec, shape: Sequence[int], data: bytes | memoryview) -> np.ndarray:
    """A tensor's raw bytes (little-endian, row-major, as the protocol sends them) -> its array; the size checked."""
    dtype = np.dtype(DATATYPES[spec.datatype]).newbyteorder("<")
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        raise BadRequest(f"unexpected size for input '{spec.name}', expecting {expected} bytes for shape "
                         f"{list(shape)}, got {len(data)}")
    return np.frombuffer(data, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="), copy=False)


def array_from_values(spec: TensorSpec, shape: Sequence[int], values) -> np.ndarray:
    """A tensor given as (flat or nested) numbers -> its array; the element count checked."""
    try:
        a = np.asarray(values, dtype=DATATYPES[spec.datatype])
    except (TypeError, ValueError, OverflowError):
        raise BadRequest(f"input '{spec.name}': its data must be {spec.datatype} numbers") from None
    expected = int(np.prod(shape, dtype=np.int64))
    if a.size != expected:
        raise BadRequest(f"unexpected number of elements for input '{spec.name}': shape {list(shape)} holds "
                         f"{expected}, the data has {a.size}")
    return a.reshape(shape)


def reject_unsupported(parameters: Mapping) -> None:
    """BadRequest for request parameters asking for what this server does not do."""
    if any(parameters.get(k) not in (None, 0, "", False) for k in SEQUENCE_PARAMETERS):
        raise BadRequest("sequence parameters (sequence_id, sequence_start, sequence_end) are for sequence "
                         "models; this model takes independent requests")


async def infer(model: V2Model, batcher, arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Checked inputs -> every output of the model, each batch row through the batcher (so rows of this and
    of other requests share backend calls)."""
    n = model.check_inputs(arrays)
    photo, depth, style = (torch.from_numpy(np.ascontiguousarray(arrays[t.name], dtype=np.float32))
                           for t in model.inputs)
    rows = [NetInput(photo[i:i + 1], depth[i:i + 1], style[i]) for i in range(n)]
    sketches = await asyncio.gather(*(batcher.submit(r) for r in rows))
    out = torch.stack(list(sketches)).numpy().astype(np.float32, copy=False)
    return {model.outputs[0].name: out}
