"""Run the app under uvicorn: bind, serve, and on SIGTERM / Ctrl-C stop accepting, finish, exit 0."""
from __future__ import annotations

import copy
import logging
import signal
import socket
from collections.abc import Callable

from ..errors import HidaError, InputError, first_line
from .core import SketchService
from .settings import Settings

GRACEFUL_SHUTDOWN_S = 30  # in-flight work gets this long after SIGTERM
WS_PING_S = 20.0  # a live stream's client must answer a ping within this long, or it is closed


def bind(host: str, port: int) -> socket.socket:
    """A bound TCP socket for host:port (port 0: a free one), or a one-line InputError."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as e:
        raise InputError(f"cannot listen on {host}:{port} ({first_line(e)})") from None
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/"


class HideQueryStrings(logging.Filter):
    """uvicorn logs each WebSocket handshake (and, with --access-log, each request) with its query string,
    where a client may have put a key (?api_key=...): the log shows the path only."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(a, str) and "?" in a for a in record.args):
            record.args = tuple(a.split("?", 1)[0] + "?[query hidden]" if isinstance(a, str) and a.startswith("/")
                                and "?" in a else a for a in record.args)
        return True


def log_config(level: str) -> dict:
    import uvicorn.config

    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config["loggers"]["hida_rt.serve"] = {"handlers": ["default"], "level": level.upper(), "propagate": False}
    config.setdefault("filters", {})["hide_query"] = {"()": HideQueryStrings}
    for handler in config["handlers"].values():
        handler.setdefault("filters", []).append("hide_query")
    return config


def server_config(app, settings: Settings, *, log_level: str = "info", access_log: bool = False):
    """uvicorn's Config for this service: its h11 parser (bounded request head) with the connection limits
    of connections.py, and the timeouts of Settings (docs/serve.md, "Limits")."""
    import uvicorn

    from .connections import protocol_classes

    http_class, ws_class, counter = protocol_classes(settings)
    config = uvicorn.Config(
        app, log_config=log_config(log_level), log_level=log_level, access_log=access_log,
        # The client address decides its queue share: never taken from X-Forwarded-For.
        proxy_headers=False, server_header=False,
        http=http_class, h11_max_incomplete_event_size=settings.max_header_bytes,
        timeout_keep_alive=settings.idle_timeout_s,
        ws=ws_class, ws_max_size=settings.max_frame_bytes, ws_ping_interval=WS_PING_S, ws_ping_timeout=WS_PING_S,
        # No limit_concurrency: one global count that a single address could fill; the counter caps connections
        # in all and per address instead, and the app's admission caps the work.
        limit_concurrency=None, timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S, lifespan="on")
    return config, counter


def serve(settings: Settings, service: SketchService, *, log_level: str = "info", access_log: bool = False,
          announce: Callable[[str], None] = print, v2=None) -> int:
    """Serve until SIGTERM or Ctrl-C (then exit status 0); a model that fails to load ends it with that error.
    v2 (a v2_model.V2Model): the Open Inference Protocol's REST routes, and with settings.grpc_port its gRPC
    service on the same event loop (started and stopped with the app)."""
    import uvicorn

    from .app import create_app

    failures: list[BaseException] = []
    server: uvicorn.Server | None = None

    def on_load_error(e: BaseException) -> None:
        failures.append(e)
        if server is not None:
            server.should_exit = True

    services = []
    if v2 is not None and settings.grpc_port is not None:
        from .v2_grpc import GrpcService

        services.append(GrpcService(v2, settings, settings.grpc_port, announce, grace_s=GRACEFUL_SHUTDOWN_S))
    app = create_app(service, settings, on_load_error=on_load_error, v2=v2, services=services)
    config, _ = server_config(app, settings, log_level=log_level, access_log=access_log)
    server = uvicorn.Server(config)
    sock = bind(settings.host, settings.port)
    announce(f"hida_rt.serve: listening on {url_of(sock)} (the model loads first; GET /healthz says when it is "
             "ready; Ctrl-C stops)")
    # uvicorn re-raises a caught SIGINT/SIGTERM after its graceful shutdown so that the process dies of
    # it; here a clean stop exits 0: the handlers it restores, and re-raises into, do nothing.
    stops = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in stops}
    try:
        server.run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sock.close()
    if failures:
        e = failures[0]
        raise e if isinstance(e, HidaError) else InputError(f"the model failed to load: {first_line(e)}")
    if not server.started:
        raise InputError("the server did not start (see the messages above)")
    return 0

