"""python -m hida_rt.serve --ray: the same app as a Ray Serve deployment, N replicas of one backend each.

Each replica builds the service as the in-process server does (core.SketchService,
app.create_app: same routes, page, JSON errors, key check, limits, metrics), with
one difference: its batcher is Ray Serve's `@serve.batch` rather than the
in-process DynamicBatcher. Ray Serve's HTTP proxy spreads requests over the
replicas; every response says which replica answered (X-Hida-Replica).

The Ray extra is imported only here, and this module only under --ray.
"""
from __future__ import annotations

import asyncio
import logging
import math
import os
import signal
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import HidaError, InputError, MissingDependency, first_line
from .settings import Settings

RAY_INSTALL = 'pip install "ray[serve,data]==2.60.0"  (or the hida_rt extra: pip install "hida_rt[ray]")'
APP_NAME = "hida_rt"
REPLICA_HEADER = "X-Hida-Replica"

try:
    import ray
    from ray import serve
except ImportError as e:  # the one-line message the CLI prints
    raise MissingDependency(f"--ray needs Ray Serve ({e}); install it with: {RAY_INSTALL}") from None


@dataclass(frozen=True)
class ReplicaSpec:
    """What a replica needs to build its service; pickled to every replica (the API key with it)."""

    settings: Settings
    weights: str
    backend: str = "auto"
    device: str | None = None
    onnx: str | None = None
    engine: str | None = None
    threads: int = 1  # the backend's intra-op threads: the replica's CPU share
    dtype: str | None = None  # eager's dtype when the triton self-check failed on a GPU (backends.choose)
    recheck: bool = False  # GPU replicas decide their backend themselves: --recheck probes there
    v2: Any = None  # v2_model.V2Model: the Open Inference Protocol's REST routes (plain data)


@dataclass(frozen=True)
class Scaling:
    """How many replicas, and what each reserves. max_replicas set: Ray Serve autoscales."""

    replicas: int = 1
    min_replicas: int | None = None
    max_replicas: int | None = None
    target_ongoing_requests: float | None = None
    cpus: float = 1.0
    gpus: float = 0.0

    def check(self) -> Scaling:
        if self.replicas < 1:
            raise InputError("--replicas must be at least 1")
        if self.cpus < 0 or self.gpus < 0 or (self.cpus == 0 and self.gpus == 0):
            raise InputError("--cpus-per-replica and --gpus-per-replica must be >= 0, and not both 0")
        if self.max_replicas is None:
            if self.min_replicas is not None or self.target_ongoing_requests is not None:
                raise InputError("--min-replicas and --target-ongoing-requests need --max-replicas (autoscaling)")
            return self
        low = 1 if self.min_replicas is None else self.min_replicas
        if low < 0 or self.max_replicas < max(1, low):
            raise InputError(f"autoscaling needs 0 <= --min-replicas <= --max-replicas and --max-replicas >= 1 "
                             f"(got {low} and {self.max_replicas})")
        if not low <= self.replicas <= self.max_replicas:
            raise InputError(f"--replicas {self.replicas} (the initial count when autoscaling) is outside "
                             f"--min-replicas {low} .. --max-replicas {self.max_replicas}")
        if self.target_ongoing_requests is not None and not self.target_ongoing_requests > 0:
            raise InputError("--target-ongoing-requests must be > 0")
        return self

    def describe(self) -> str:
        each = f"{self.cpus:g} CPU" + (f" + {self.gpus:g} GPU" if self.gpus else "")
        if self.max_replicas is None:
            return f"{self.replicas} replica(s), {each} each"
        low = 1 if self.min_replicas is None else self.min_replicas
        return f"{low}..{self.max_replicas} replicas (autoscaling, {self.replicas} at start), {each} each"


def deployment_options(settings: Settings, scaling: Scaling) -> dict[str, Any]:
    """The options of SketchDeployment for serve.deployment(...).options(**these)."""
    actor: dict[str, Any] = {"num_cpus": scaling.cpus}
    if scaling.gpus:
        actor["num_gpus"] = scaling.gpus
    # A replica takes what its own admission limits allow and answers the rest with its JSON 503;
    # Ray's proxy would otherwise queue them without bound.
    options: dict[str, Any] = {"ray_actor_options": actor,
                               "max_ongoing_requests": settings.max_queue + settings.max_streams,
                               "graceful_shutdown_timeout_s": 30}
    if scaling.max_replicas is None:
        options["num_replicas"] = scaling.replicas
    else:
        options["autoscaling_config"] = {
            "min_replicas": 1 if scaling.min_replicas is None else scaling.min_replicas,
            "initial_replicas": scaling.replicas, "max_replicas": scaling.max_replicas,
            # A replica is busy once a full batch waits on it.
            "target_ongoing_requests": scaling.target_ongoing_requests or settings.max_batch}
    return options


class ServeBatcher:
    """The app's Batcher (see batcher.Batcher) over a `@serve.batch` method: Ray Serve groups the inputs."""

    def __init__(self, batched: Callable[[Any], Any]):
        self._batched = batched
        self._stopping = False
        self.depth = 0  # inputs submitted and not answered yet (waiting or computing)
        self.last_batch_s = 0.0

    async def start(self) -> None:
        self._stopping = False

    async def submit(self, item: Any) -> Any:
        from .errors import Unavailable

        if self._stopping:
            raise Unavailable("the service is stopping")
        self.depth += 1
        try:
            return await self._batched(item)
        finally:
            self.depth -= 1

    def retry_after(self) -> float:
        return max(self.last_batch_s, 0.05) * 2

    async def stop(self) -> None:
        self._stopping = True


class ReplicaHeader:
    """ASGI middleware: every HTTP response names the replica that made it."""

    def __init__(self, app, replica: str):
        self.app = app
        self.header = (REPLICA_HEADER.lower().encode(), replica.encode())

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def tagged(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), self.header]}
            await send(message)

        await self.app(scope, receive, tagged)


def _shape_groups(items: Sequence[Any]) -> list[list[int]]:
    """Indices of items grouped by network input shape, in order (one backend call needs one shape)."""
    groups: dict[Any, list[int]] = {}
    for i, item in enumerate(items):
        groups.setdefault(item.shape, []).append(i)
    return list(groups.values())


@serve.deployment(name="SketchDeployment")
@serve.ingress()
class SketchDeployment:
    """One replica: one backend, the service app around it, Ray Serve's batching in front of run_batch."""

    async def __init__(self, spec: ReplicaSpec):
        import time

        import torch

        from ..backends import create_backend
        from .core import SketchService

        torch.set_num_threads(max(1, spec.threads))
        self.spec = spec
        s = spec.settings
        self.service = SketchService(
            lambda: create_backend(spec.backend, spec.weights, device=spec.device, onnx=spec.onnx, engine=spec.engine,
                                   threads=spec.threads, progress=False, recheck=spec.recheck,
                                   **({"dtype": spec.dtype} if spec.dtype else {})),
            s, weights=spec.weights)
        # Loaded before the replica counts as started: Ray routes nothing to it until then.
        await asyncio.to_thread(self.service.load)
        self._batched.set_max_batch_size(s.max_batch)
        self._batched.set_batch_wait_timeout_s(s.max_wait_s)
        self.batcher = ServeBatcher(self._batched)
        self._clock = time.perf_counter
        self.replica = serve.get_replica_context().replica_id.unique_id

    def __serve_build_asgi_app__(self):
        from .app import create_app

        app = create_app(self.service, self.spec.settings, batcher=self.batcher, v2=self.spec.v2)
        app.add_middleware(ReplicaHeader, replica=self.replica)
        return app

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.005)  # set from the settings in __init__
    async def _batched(self, items: list[Any]) -> list[Any]:
        t0 = self._clock()
        try:
            return await asyncio.to_thread(self._run, items)
        finally:
            self.batcher.last_batch_s = self._clock() - t0

    def _run(self, items: list[Any]) -> list[Any]:
        out: list[Any] = [None] * len(items)
        for group in _shape_groups(items):
            for i, sketch in zip(group, self.service.run_batch([items[i] for i in group])):
                out[i] = sketch
        return out


# -- the driver: start or join Ray, deploy, serve until SIGTERM / Ctrl-C ------------------------
def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _start_ray(address: str | None) -> bool:
    """Join the cluster at address / $RAY_ADDRESS, or start a local one; True when joined."""
    joined = bool(address or os.environ.get("RAY_ADDRESS"))
    kwargs: dict[str, Any] = {"address": address, "logging_level": logging.WARNING, "log_to_driver": False}
    if not joined:
        kwargs["include_dashboard"] = False  # a local instance for this server only
    try:
        ray.init(**kwargs)
    except Exception as e:  # ConnectionError, ValueError for a bad address, ...
        raise HidaError(f"cannot start or join Ray ({first_line(e, 200)})") from None
    return joined


def check_fits(scaling: Scaling, resources: dict[str, float]) -> None:
    """InputError if the first replicas cannot all be placed on a local instance (they would wait forever)."""
    for kind, each in (("CPU", scaling.cpus), ("GPU", scaling.gpus)):
        have = float(resources.get(kind, 0))
        if each and scaling.replicas * each > have + 1e-9:
            raise InputError(f"{scaling.replicas} replica(s) x {each:g} {kind} do not fit in this machine's "
                             f"{have:g} {kind}(s): use fewer replicas, or --{kind.lower()}s-per-replica "
                             f"{have / scaling.replicas:g}")


def serve_on_ray(settings: Settings, spec: ReplicaSpec, scaling: Scaling, *, address: str | None = None,
                 announce: Callable[[str], None] = print) -> int:
    """Deploy on Ray Serve and serve until SIGTERM or Ctrl-C (exit status 0)."""
    where = address or os.environ.get("RAY_ADDRESS")
    announce(f"hida_rt.serve: {'joining Ray at ' + where if where else 'starting a local Ray instance'}; "
             f"deploying {scaling.describe()} (each loads the model first)")
    stop = threading.Event()
    serving = False

    def on_signal(*_):
        stop.set()
        if not serving:  # still starting: stop now
            raise KeyboardInterrupt

    stops = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.getsignal(sig) for sig in stops}
    joined = False
    try:
        joined = _start_ray(address)
        # After ray.init, which installs its own (aborting) SIGTERM handler in the driver.
        for sig in stops:
            signal.signal(sig, on_signal)
        if not joined:
            check_fits(scaling, ray.cluster_resources())
        port = settings.port or free_port(settings.host)
        try:
            # Ray's proxy owns the connections: of the limits, only its keep-alive idle timeout can be set
            # (docs/serve.md, "Limits under --ray"); the rest hold in the replica's app (guard.py, stream.py).
            serve.start(http_options={"host": settings.host, "port": port,
                                      "keep_alive_timeout_s": max(1, math.ceil(settings.idle_timeout_s))})
            app = SketchDeployment.options(**deployment_options(settings, scaling)).bind(spec)
            serve.run(app, name=APP_NAME, route_prefix="/", blocking=False)
        except Exception as e:
            raise HidaError(f"Ray Serve could not deploy the service: {first_line(e, 300)} "
                            "(Ray's logs: $RAY_TMPDIR/session_latest/logs/serve)") from None
        serving = True
        host = f"[{settings.host}]" if ":" in settings.host else settings.host
        announce(f"hida_rt.serve: listening on http://{host}:{port}/ (Ray Serve, {scaling.describe()}; "
                 "Ctrl-C stops)")
        while not stop.wait(0.5):
            pass
        return 0
    finally:
        try:
            if ray.is_initialized():
                # A joined cluster may serve other applications: remove only this one.
                serve.delete(APP_NAME) if joined else serve.shutdown()
        finally:
            ray.shutdown()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
