"""The Open Inference Protocol (KServe v2) over gRPC: GRPCInferenceService in the HTTP server's process.

Started by the app's lifespan when --grpc-port is given, on the HTTP
server's event loop, so it shares the loaded backend, the dynamic batcher
and the queue admission with /v1/sketch and the v2 REST routes, and stops
with them (in-flight calls get the same grace). Implemented: ServerLive,
ServerReady, ModelReady, ServerMetadata, ModelMetadata, ModelConfig and
ModelInfer (tensor contents or raw_input_contents in, raw_output_contents
out); every other RPC of the service answers UNIMPLEMENTED.

The messages and service stubs are those tritonclient ships
(tritonclient.grpc.service_pb2, generated from Triton's grpc_service.proto,
the KServe v2 proto with Triton's extensions, same package and service name),
so the server and the clients it is tested with agree on the wire format by
construction (docs/serve.md says why no .proto is vendored here).
"""
from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable

import grpc
import numpy as np
from tritonclient.grpc import service_pb2, service_pb2_grpc

from .. import __version__
from ..errors import HidaError, first_line
from .errors import BadRequest, ServiceError, Unauthorized, status_of
from .settings import Settings
from .v2_model import (
    EXTENSIONS,
    PLATFORM,
    SERVER_NAME,
    V2Model,
    array_from_bytes,
    array_from_values,
    infer,
    reject_unsupported,
)

log = logging.getLogger("hida_rt.serve")
# InferTensorContents field holding each datatype's values (tensors sent without raw_input_contents).
CONTENTS_FIELD = {"BOOL": "bool_contents", "INT8": "int_contents", "INT16": "int_contents", "INT32": "int_contents",
                  "INT64": "int64_contents", "UINT8": "uint_contents", "UINT16": "uint_contents",
                  "UINT32": "uint_contents", "UINT64": "uint64_contents", "FP32": "fp32_contents",
                  "FP64": "fp64_contents"}
# HTTP status of a service error -> its gRPC code.
GRPC_CODES = {400: grpc.StatusCode.INVALID_ARGUMENT, 401: grpc.StatusCode.UNAUTHENTICATED,
              403: grpc.StatusCode.PERMISSION_DENIED, 404: grpc.StatusCode.NOT_FOUND,
              408: grpc.StatusCode.DEADLINE_EXCEEDED, 413: grpc.StatusCode.RESOURCE_EXHAUSTED,
              415: grpc.StatusCode.INVALID_ARGUMENT, 501: grpc.StatusCode.UNIMPLEMENTED,
              503: grpc.StatusCode.UNAVAILABLE}
# Room for the response beside its tensors (names, shapes, ids).
MESSAGE_OVERHEAD = 64 * 2**10


def peer_address(peer: str) -> str:
    """grpc's peer string ("ipv4:127.0.0.1:5050", "ipv6:[::1]:5050") -> the client address."""
    kind, _, rest = peer.partition(":")
    if kind == "ipv6":
        return rest.rsplit(":", 1)[0].strip("[]")
    if kind == "ipv4":
        return rest.rsplit(":", 1)[0]
    return peer or "unknown"


def parameter_values(parameters) -> dict:
    return {k: getattr(v, v.WhichOneof("parameter_choice")) for k, v in parameters.items()
            if v.WhichOneof("parameter_choice")}


class Servicer(service_pb2_grpc.GRPCInferenceServiceServicer):
    """The implemented RPCs; each checks the API key, counts itself, and answers errors as one-line statuses."""

    def __init__(self, model: V2Model, state):
        self.model, self.state = model, state
        self.metrics = state.metrics
        self.api_key = state.settings.api_key

    async def _call(self, method: str, context, work: Callable, *, admit: bool = False):
        t0 = time.perf_counter()
        code = grpc.StatusCode.OK
        client, admitted = peer_address(context.peer()), False
        try:
            if self.api_key:
                self._check_key(context)
            if admit:
                self.state.requests.enter(client, getattr(self.state.batcher, "retry_after", lambda: 1.0)())
                admitted = True
            return await work()
        except Exception as e:  # noqa: BLE001 (every error becomes a status; the server goes on)
            if isinstance(e, ServiceError | HidaError):
                code = GRPC_CODES.get(status_of(e), grpc.StatusCode.INTERNAL)
                message = first_line(e, 300)
            else:
                code = grpc.StatusCode.INTERNAL
                log.exception("unexpected error in gRPC %s", method)
                message = f"internal error ({type(e).__name__}); the server log has the details"
            if isinstance(e, ServiceError) and e.headers.get("Retry-After"):
                context.set_trailing_metadata((("retry-after", e.headers["Retry-After"]),))
            await context.abort(code, message)
        finally:
            if admitted:
                self.state.requests.leave(client)
            self.metrics.grpc_requests.labels(method, code.name).inc()
            self.metrics.grpc_latency.labels(method).observe(time.perf_counter() - t0)

    def _check_key(self, context) -> None:
        given = dict(context.invocation_metadata()).get("authorization", "")
        scheme, _, key = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(key.strip().encode(), self.api_key.encode()):
            raise Unauthorized("missing or wrong API key: send the metadata authorization: Bearer <key>")

    # -- health and metadata ---------------------------------------------------------------
    async def ServerLive(self, request, context):
        async def work():
            return service_pb2.ServerLiveResponse(live=True)
        return await self._call("ServerLive", context, work)

    async def ServerReady(self, request, context):
        async def work():
            return service_pb2.ServerReadyResponse(ready=self.state.service.ready)
        return await self._call("ServerReady", context, work)

    async def ModelReady(self, request, context):
        async def work():
            self.model.check_target(request.name, request.version)
            return service_pb2.ModelReadyResponse(ready=self.state.service.ready)
        return await self._call("ModelReady", context, work)

    async def ServerMetadata(self, request, context):
        async def work():
            return service_pb2.ServerMetadataResponse(name=SERVER_NAME, version=__version__,
                                                      extensions=list(EXTENSIONS))
        return await self._call("ServerMetadata", context, work)

    async def ModelMetadata(self, request, context):
        async def work():
            m = self.model
            m.check_target(request.name, request.version)
            tensor = service_pb2.ModelMetadataResponse.TensorMetadata
            return service_pb2.ModelMetadataResponse(
                name=m.name, versions=[m.version], platform=PLATFORM,
                inputs=[tensor(name=t.name, datatype=t.datatype, shape=t.shape) for t in m.inputs],
                outputs=[tensor(name=t.name, datatype=t.datatype, shape=t.shape) for t in m.outputs])
        return await self._call("ModelMetadata", context, work)

    async def ModelConfig(self, request, context):
        async def work():
            self.model.check_target(request.name, request.version)
            return service_pb2.ModelConfigResponse(config=self.model.config_proto())
        return await self._call("ModelConfig", context, work)

    # -- inference ----------------------------------------------------------------------------
    async def ModelInfer(self, request, context):
        async def work():
            m = self.model
            m.check_target(request.model_name, request.model_version)
            self.state.require_ready()
            reject_unsupported(parameter_values(request.parameters))
            for o in request.outputs:
                if parameter_values(o.parameters).get("classification"):
                    raise BadRequest("the classification extension is not supported: this model's output is an "
                                     "image")
            names = m.output_names([o.name for o in request.outputs])
            arrays = self.decode_inputs(request)
            outputs = await infer(m, self.state.batcher, arrays)
            specs = {t.name: t for t in m.outputs}
            response = service_pb2.ModelInferResponse(model_name=m.name, model_version=m.version, id=request.id)
            for name in names:
                a = np.ascontiguousarray(outputs[name])
                response.outputs.add(name=name, datatype=specs[name].datatype, shape=a.shape)
                response.raw_output_contents.append(a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes())
            return response
        return await self._call("ModelInfer", context, work, admit=True)

    def decode_inputs(self, request) -> dict[str, np.ndarray]:
        raw = request.raw_input_contents
        if raw and len(raw) != len(request.inputs):
            raise BadRequest(f"raw_input_contents has {len(raw)} entries for {len(request.inputs)} inputs: give "
                             "every input's data there, or none")
        arrays: dict[str, np.ndarray] = {}
        for i, t in enumerate(request.inputs):
            if t.name in arrays:
                raise BadRequest(f"input '{t.name}' is given twice")
            shape = tuple(t.shape)
            spec = self.model.check_input_header(t.name, t.datatype, shape)
            if raw:
                if t.HasField("contents"):
                    raise BadRequest(f"input '{t.name}' has both contents and raw_input_contents")
                arrays[t.name] = array_from_bytes(spec, shape, raw[i])
            elif t.HasField("contents"):
                arrays[t.name] = array_from_values(spec, shape, getattr(t.contents, CONTENTS_FIELD[spec.datatype]))
            else:
                raise BadRequest(f"input '{t.name}' has no contents (and the request no raw_input_contents)")
        return arrays


class GrpcService:
    """The gRPC server, started and stopped by the app's lifespan (on the HTTP server's event loop)."""

    def __init__(self, model: V2Model, settings: Settings, port: int, announce: Callable[[str], None] = print,
                 grace_s: float = 30.0):
        self.model, self.settings, self.port = model, settings, port
        self.announce, self.grace_s = announce, grace_s
        self._server: grpc.aio.Server | None = None

    def message_limits(self) -> tuple[int, int]:
        """(largest request, largest response) in bytes: the body limit in; a full batch of outputs out."""
        out = sum(4 * int(np.prod([d for d in t.shape if d > 0])) for t in self.model.outputs)
        return self.settings.max_body_bytes, max(1, self.model.max_batch_size) * out + MESSAGE_OVERHEAD

    async def start(self, state) -> None:
        from concurrent.futures import ThreadPoolExecutor

        receive, send = self.message_limits()
        s = self.settings
        self._server = grpc.aio.server(
            # The base class's UNIMPLEMENTED answers are plain functions: they need a thread to run in.
            migration_thread_pool=ThreadPoolExecutor(1, thread_name_prefix="hida-grpc"),
            maximum_concurrent_rpcs=s.max_queue + s.max_streams,
            options=[("grpc.max_receive_message_length", receive), ("grpc.max_send_message_length", send),
                     ("grpc.so_reuseport", 0)])
        host = f"[{s.host}]" if ":" in s.host else s.host
        try:
            bound = self._server.add_insecure_port(f"{host}:{self.port}")
        except RuntimeError as e:
            bound, why = 0, first_line(e)
        else:
            why = "the address is in use or not local"
        if not bound:
            self._server = None
            raise HidaError(f"cannot listen for gRPC on {s.host}:{self.port} ({why})")
        service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(Servicer(self.model, state), self._server)
        await self._server.start()
        self.announce(f"hida_rt.serve: gRPC (Open Inference Protocol) on {host}:{bound}")

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop(self.grace_s)
            self._server = None
