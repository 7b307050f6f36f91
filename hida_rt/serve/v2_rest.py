"""The Open Inference Protocol (KServe v2) over HTTP/REST, on the service's own app, port, batcher and limits.

    GET  /v2                                  server metadata
    GET  /v2/health/live, /v2/health/ready    200 or 503, empty body
    GET  /v2/models/hida[/versions/1]         model metadata (inputs, outputs as in the Triton repository)
    GET  /v2/models/hida[/versions/1]/ready   200 or 503
    GET  /v2/models/hida[/versions/1]/config  the model configuration (Triton's model_configuration extension)
    POST /v2/models/hida[/versions/1]/infer   inference: JSON tensors, or the binary tensor data extension

The binary tensor data extension as Triton implements it: the header
Inference-Header-Content-Length: N says the first N bytes of the body are the
JSON request; the binary tensors follow in the order of the inputs whose
parameters give binary_data_size. Outputs come back binary when asked
(outputs[].parameters.binary_data, or binary_data_output for all), in the same
layout. Errors are the app's {"error": "..."} with their status; the API
key, Host/Origin checks, body limits and queue admission are the Guard's, as
for /v1/sketch.
"""
from __future__ import annotations

import json
from collections.abc import Mapping

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import Response

from .. import __version__
from .errors import BadRequest, Unavailable
from .v2_model import (
    DATATYPES,
    EXTENSIONS,
    SERVER_NAME,
    V2Model,
    array_from_bytes,
    array_from_values,
    infer,
    reject_unsupported,
)

HEADER_LENGTH = "Inference-Header-Content-Length"


def _reject_constant(name: str):
    raise BadRequest(f"the request JSON holds {name}: tensor data must be finite numbers")


def _object(value, what: str) -> Mapping:
    if not isinstance(value, Mapping):
        raise BadRequest(f"{what} must be a JSON object")
    return value


def _shape(value, name: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(isinstance(d, int) and not isinstance(d, bool) for d in value):
        raise BadRequest(f"input '{name}': shape must be a list of integers")
    return tuple(value)


def split_body(body: bytes, header_length: str | None) -> tuple[Mapping, memoryview]:
    """The request body -> its JSON header and the binary data after it."""
    if header_length is None:
        json_part, binary = body, memoryview(b"")
    else:
        try:
            n = int(header_length)
        except ValueError:
            raise BadRequest(f"{HEADER_LENGTH} is not a number: {header_length[:40]!r}") from None
        if not 0 <= n <= len(body):
            raise BadRequest(f"{HEADER_LENGTH} is {n}, but the body has {len(body):,} bytes")
        json_part, binary = body[:n], memoryview(body)[n:]
    try:
        request = json.loads(json_part, parse_constant=_reject_constant)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        hint = "" if header_length is not None else f" (binary tensors need the {HEADER_LENGTH} header)"
        raise BadRequest(f"the inference request is not valid JSON: {e}{hint}") from None
    return _object(request, "the inference request"), binary


def decode_inputs(model: V2Model, request: Mapping, binary: memoryview) -> dict[str, np.ndarray]:
    """JSON and binary inputs -> checked arrays (datatype, shape, element count, binary sizes)."""
    inputs = request.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise BadRequest("the inference request has no 'inputs' list")
    arrays: dict[str, np.ndarray] = {}
    offset = 0
    for i, item in enumerate(inputs):
        item = _object(item, f"inputs[{i}]")
        name = item.get("name")
        if not isinstance(name, str):
            raise BadRequest(f"inputs[{i}] has no name")
        if name in arrays:
            raise BadRequest(f"input '{name}' is given twice")
        shape = _shape(item.get("shape"), name)
        datatype = item.get("datatype")
        if datatype not in DATATYPES and datatype != "BYTES":
            raise BadRequest(f"input '{name}': datatype {datatype!r} is not one of the protocol's types")
        spec = model.check_input_header(name, datatype, shape)
        parameters = _object(item.get("parameters") or {}, f"input '{name}' parameters")
        size = parameters.get("binary_data_size")
        if size is not None:
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise BadRequest(f"input '{name}': binary_data_size must be a non-negative integer")
            if "data" in item:
                raise BadRequest(f"input '{name}' has both binary_data_size and JSON data")
            if offset + size > len(binary):
                raise BadRequest(f"input '{name}': binary_data_size {size:,} goes past the end of the binary data "
                                 f"({len(binary):,} bytes after the JSON, {offset:,} used by earlier inputs)")
            arrays[name] = array_from_bytes(spec, shape, binary[offset:offset + size])
            offset += size
        elif "data" in item:
            arrays[name] = array_from_values(spec, shape, item["data"])
        else:
            raise BadRequest(f"input '{name}' has neither data nor binary_data_size")
    if offset != len(binary):
        raise BadRequest(f"the body has {len(binary):,} bytes of binary data after the JSON, but the inputs' "
                         f"binary_data_size add up to {offset:,}")
    return arrays


def requested_outputs(model: V2Model, request: Mapping) -> list[tuple[str, bool]]:
    """(output name, binary?) for each output to return."""
    parameters = _object(request.get("parameters") or {}, "the request parameters")
    reject_unsupported(parameters)
    all_binary = bool(parameters.get("binary_data_output", False))
    outputs = request.get("outputs") or []
    if not isinstance(outputs, list):
        raise BadRequest("'outputs' must be a list")
    binary: dict[str, bool] = {}
    for i, item in enumerate(outputs):
        item = _object(item, f"outputs[{i}]")
        name = item.get("name")
        if not isinstance(name, str):
            raise BadRequest(f"outputs[{i}] has no name")
        p = _object(item.get("parameters") or {}, f"output '{name}' parameters")
        if p.get("classification"):
            raise BadRequest("the classification extension is not supported: this model's output is an image")
        binary[name] = bool(p.get("binary_data", all_binary))
    names = model.output_names(list(binary))
    return [(n, binary.get(n, all_binary)) for n in names]


def encode_response(model: V2Model, request_id, outputs: dict[str, np.ndarray],
                    wanted: list[tuple[str, bool]]) -> Response:
    specs = {t.name: t for t in model.outputs}
    header: dict = {"model_name": model.name, "model_version": model.version}
    if request_id is not None:
        header["id"] = request_id
    tensors, chunks = [], []
    for name, as_binary in wanted:
        a = np.ascontiguousarray(outputs[name], dtype=DATATYPES[specs[name].datatype])
        t = {"name": name, "datatype": specs[name].datatype, "shape": list(a.shape)}
        if as_binary:
            data = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
            t["parameters"] = {"binary_data_size": len(data)}
            chunks.append(data)
        else:
            t["data"] = a.ravel().tolist()
        tensors.append(t)
    header["outputs"] = tensors
    text = json.dumps(header, separators=(",", ":")).encode()
    if not chunks:
        return Response(text, media_type="application/json")
    return Response(b"".join([text, *chunks]), media_type="application/octet-stream",
                    headers={HEADER_LENGTH: str(len(text))})


def add_v2_routes(app: FastAPI, state, model: V2Model) -> None:
    """Mount the v2 routes on the service app; `state` is the app's AppState (service, batcher)."""
    service = state.service

    def ready_or_503() -> Response:
        state.require_ready()
        return Response(status_code=200)

    @app.get("/v2", summary="Open Inference Protocol: server metadata", tags=["v2"])
    async def server_metadata():
        return {"name": SERVER_NAME, "version": __version__, "extensions": list(EXTENSIONS)}

    @app.get("/v2/health/live", summary="Open Inference Protocol: the server is live", tags=["v2"])
    async def live():
        return Response(status_code=200)

    @app.get("/v2/health/ready", summary="Open Inference Protocol: the model is loaded", tags=["v2"])
    async def ready():
        return ready_or_503()

    for prefix in ("/v2/models/{model_name}", "/v2/models/{model_name}/versions/{model_version}"):
        @app.get(prefix, summary="Open Inference Protocol: model metadata", tags=["v2"])
        async def model_metadata(model_name: str, model_version: str | None = None):
            model.check_target(model_name, model_version)
            return model.metadata()

        @app.get(prefix + "/ready", summary="Open Inference Protocol: the model is ready", tags=["v2"])
        async def model_ready(model_name: str, model_version: str | None = None):
            model.check_target(model_name, model_version)
            return ready_or_503()

        @app.get(prefix + "/config", summary="Open Inference Protocol: model configuration", tags=["v2"])
        async def model_config(model_name: str, model_version: str | None = None):
            model.check_target(model_name, model_version)
            return model.config_json()

        @app.post(prefix + "/infer", summary="Open Inference Protocol: inference", tags=["v2"])
        async def model_infer(request: Request, model_name: str, model_version: str | None = None):
            model.check_target(model_name, model_version)
            if request.headers.get("content-encoding", "identity").lower() != "identity":
                raise BadRequest(f"Content-Encoding {request.headers['content-encoding']} is not supported; send "
                                 "the request uncompressed")
            if not service.ready:
                raise Unavailable("the model is still loading", retry_after=5)
            body = await request.body()
            header, binary = split_body(body, request.headers.get(HEADER_LENGTH))
            del body
            request_id = header.get("id")
            if request_id is not None and not isinstance(request_id, str):
                raise BadRequest("the request id must be a string")
            wanted = requested_outputs(model, header)
            arrays = decode_inputs(model, header, binary)
            outputs = await infer(model, state.batcher, arrays)
            return encode_response(model, request_id, outputs, wanted)
