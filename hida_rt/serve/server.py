"""Run the app under uvicorn: bind, serve, and on SIGTERM / Ctrl-C stop accepting, finish, exit 0."""
from __future__ import annotations

import copy
import signal
import socket
import sys
from collections.abc import Callable

from ..errors import HidaError, InputError, first_line
from .core import SketchService
from .settings import Settings

GRACEFUL_SHUTDOWN_S = 30  # in-flight work gets this long after SIGTERM
# Connections uvicorn accepts at once before answering 503 itself; far above the app's own
# admission limits, so clients normally see the app's JSON 503, and a flood of idle sockets is still bounded.
CONNECTIONS_PER_QUEUE_SLOT = 4


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


def log_config(level: str) -> dict:
    import uvicorn.config

    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config["loggers"]["hida_rt.serve"] = {"handlers": ["default"], "level": level.upper(), "propagate": False}
    return config


def serve(settings: Settings, service: SketchService, *, log_level: str = "info", access_log: bool = False,
          announce: Callable[[str], None] = print) -> int:
    """Serve until SIGTERM or Ctrl-C (then exit status 0); a model that fails to load ends it with that error."""
    import uvicorn

    from .app import create_app

    failures: list[BaseException] = []
    server: uvicorn.Server | None = None

    def on_load_error(e: BaseException) -> None:
        failures.append(e)
        if server is not None:
            server.should_exit = True

    app = create_app(service, settings, on_load_error=on_load_error)
    config = uvicorn.Config(
        app, log_config=log_config(log_level), log_level=log_level, access_log=access_log,
        # The client address decides its queue share: never taken from X-Forwarded-For.
        proxy_headers=False, server_header=False, ws_max_size=settings.max_frame_bytes,
        ws_ping_interval=20.0, ws_ping_timeout=20.0, timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        limit_concurrency=CONNECTIONS_PER_QUEUE_SLOT * (settings.max_queue + settings.max_streams) + 16,
        lifespan="on")
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit("run python -m hida_rt.serve")
