"""hida-rt serve --weights W [--host 127.0.0.1] [--port 8000] [--backend auto] [--max-batch 8] ..."""
from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

from ..cli import prog_name, run_cli
from ..cli_options import add_backend_options, add_weights, backend_from_args
from ..errors import CheckpointError, InputError
from ..model import SIZE_MULTIPLE
from .ray_options import add_ray_options, check_ray_args, run_on_ray
from .settings import BODY_GRACE_S

API_KEY_ENV = "HIDA_API_KEY"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog_name("serve"),
        description="Serve HIDA sketches over HTTP: POST /v1/sketch (a photo, with or without its depth map), "
                    "a live webcam page at / streaming over WS /v1/stream, /healthz and Prometheus /metrics. "
                    "Concurrent requests are batched into one backend call.",
        epilog="Examples:\n"
               "  hida-rt serve --weights hida.ckpt            # then open http://127.0.0.1:8000/\n"
               "  curl -F photo=@face.png -F depth=@depth.png 'http://127.0.0.1:8000/v1/sketch?style=3' -o s.png\n"
               f"  {API_KEY_ENV}=$(python -c 'import secrets; print(secrets.token_urlsafe(32))') \\\n"
               "    hida-rt serve --weights hida.ckpt --host 0.0.0.0   # other machines: key required\n"
               "  hida-rt serve --weights hida.ckpt --ray --replicas 2   # on Ray Serve: docs/scale-out.md\n\n"
               "Needs the serve extra (FastAPI, uvicorn, prometheus-client, python-multipart); sketching without "
               "a depth map and the live stream also need the face extra (MediaPipe).",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_weights(p)
    net = p.add_argument_group("listening and access")
    net.add_argument("--host", default="127.0.0.1",
                     help="address to bind (default 127.0.0.1: this machine only, no key needed); any other "
                          "(0.0.0.0, a LAN address, even 127.0.0.2) requires an API key")
    net.add_argument("--port", type=int, default=8000, help="TCP port (default 8000; 0 picks a free one)")
    net.add_argument("--api-key", default=None,
                     help=f"clients must send Authorization: Bearer KEY on every route but /healthz (default: "
                          f"${API_KEY_ENV}; prefer the variable, a command line is visible to other users)")
    net.add_argument("--grpc-port", type=int, default=None, metavar="PORT",
                     help="also serve the Open Inference Protocol (KServe v2) over gRPC on this port, in the same "
                          "process (0 picks a free one; default: off). Its REST form is always on: /v2/...")
    net.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                     help="a web origin (https://app.example.com) whose pages may call the API; repeatable "
                          "(default: none, no CORS)")
    add_backend_options(p)
    batching = p.add_argument_group("batching and limits")
    batching.add_argument("--size", type=int, default=256,
                          help=f"network resolution for photo + depth uploads, a multiple of {SIZE_MULTIPLE} "
                               "(default 256)")
    batching.add_argument("--max-batch", type=int, default=8, help="network inputs per backend call (default 8)")
    batching.add_argument("--max-wait-ms", type=float, default=5.0,
                          help="how long a batch waits for more requests once its first arrived (default 5)")
    batching.add_argument("--max-queue", type=int, default=64,
                          help="sketch requests in progress at once; more are answered 503 with Retry-After "
                               "(default 64)")
    batching.add_argument("--client-share", type=float, default=0.5,
                          help="fraction of --max-queue and --max-streams one client address may hold (default 0.5)")
    batching.add_argument("--max-streams", type=int, default=4, help="live streams at once (default 4)")
    batching.add_argument("--max-body-mb", type=float, default=20.0, help="largest request body in MiB (default 20)")
    batching.add_argument("--max-frame-mb", type=float, default=4.0,
                          help="largest live-stream message (one frame) in MiB (default 4)")
    batching.add_argument("--max-megapixels", type=float, default=16.8,
                          help="largest uploaded image, in millions of pixels, checked before decoding (default 16.8: "
                               "4096x4096)")
    batching.add_argument("--cpu-workers", type=int, default=4,
                          help="uploads decoded / encoded at once (bounds their memory; default 4)")
    batching.add_argument("--style", "-s", default="2",
                          help="style when a request names none (default 2); see POST /v1/sketch?style=")
    add_limit_options(p)
    p.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"),
                   help="server log level (default info)")
    p.add_argument("--access-log", action="store_true", help="log every request")
    add_ray_options(p)
    return p


def add_limit_options(p: argparse.ArgumentParser) -> None:
    """What one slow, idle or oversized client may hold (docs/serve.md, "Limits"); defaults from Settings."""
    from .settings import Settings

    d = Settings()
    g = p.add_argument_group("connection limits", "what a slow, idle or oversized client may hold; each refusal is "
                             "one JSON line with its status (docs/serve.md, Limits)")
    g.add_argument("--max-connections", type=int, default=d.max_connections, metavar="N",
                   help=f"open TCP connections, live streams included; more are answered 503 (default {d.max_connections})")
    g.add_argument("--max-connections-per-client", type=int, default=d.client_connections, metavar="N",
                   help=f"of those, from one client address (default {d.client_connections})")
    g.add_argument("--idle-timeout", type=float, default=d.idle_timeout_s, metavar="S",
                   help=f"close a connection that sends nothing for S seconds, before or between requests "
                        f"(default {d.idle_timeout_s:g})")
    g.add_argument("--header-timeout", type=float, default=d.header_timeout_s, metavar="S",
                   help=f"the request line and headers must arrive within S seconds; else 408 "
                        f"(default {d.header_timeout_s:g})")
    g.add_argument("--max-header-kb", type=float, default=d.max_header_bytes / 1024, metavar="KIB",
                   help=f"largest request line + headers in KiB; more: 431 (default {d.max_header_bytes // 1024})")
    g.add_argument("--max-headers", type=int, default=d.max_headers, metavar="N",
                   help=f"most header fields in one request; more: 431 (default {d.max_headers})")
    g.add_argument("--body-timeout", type=float, default=d.body_timeout_s, metavar="S",
                   help=f"the whole request body must arrive within S seconds of its headers, before the request "
                        f"takes a queue slot; else 408 (default {d.body_timeout_s:g})")
    g.add_argument("--min-body-rate-kb", type=float, default=d.min_body_rate / 1024, metavar="KIB_S",
                   help=f"after its first {BODY_GRACE_S:g} s a body must keep arriving at this many KiB/s; else 408 "
                        f"(default {d.min_body_rate // 1024})")
    g.add_argument("--stream-idle-timeout", type=float, default=d.stream_idle_s, metavar="S",
                   help=f"close a live stream that sends no frame for S seconds (default {d.stream_idle_s:g})")


def settings_from_args(args: argparse.Namespace):
    from .core import parse_style
    from .settings import Settings

    api_key = args.api_key if args.api_key is not None else os.environ.get(API_KEY_ENV) or None
    s = Settings(host=args.host, port=args.port, size=args.size, max_batch=args.max_batch,
                 max_wait_ms=args.max_wait_ms, max_queue=args.max_queue, client_share=args.client_share,
                 max_streams=args.max_streams, max_body_bytes=int(args.max_body_mb * 2**20),
                 max_pixels=int(args.max_megapixels * 1e6), max_frame_bytes=int(args.max_frame_mb * 2**20), api_key=api_key,
                 cors_origins=tuple(args.cors_origin), cpu_workers=args.cpu_workers, default_style=args.style,
                 max_connections=args.max_connections, client_connections=args.max_connections_per_client,
                 idle_timeout_s=args.idle_timeout, header_timeout_s=args.header_timeout,
                 max_header_bytes=int(args.max_header_kb * 1024), max_headers=args.max_headers,
                 body_timeout_s=args.body_timeout, min_body_rate=int(args.min_body_rate_kb * 1024),
                 stream_idle_s=args.stream_idle_timeout, grpc_port=args.grpc_port)
    try:
        parse_style(args.style)
    except Exception as e:
        raise InputError(f"--style: {e}") from None
    return s.check()


def describe_v2_model(size: int, max_batch: int, max_wait_ms: float) -> dict:
    """The model the Open Inference Protocol routes serve, read from the config.pbtxt that the Triton
    repository writer makes for this network at --size, so its inputs, outputs and shapes are that
    repository's (an entry point: it may use the export layer). As JSON."""
    from ..export import triton_repo
    from .v2_model import V2Model

    info = triton_repo.network_info(size, size)
    text = triton_repo.config_text(info, triton_repo.DEFAULT_NAME, max_batch, round(max_wait_ms * 1000), 1,
                                   "python -m hida_rt.serve")
    return V2Model.from_config_text(text, triton_repo.VERSION).to_json()


def v2_model(settings):
    """describe_v2_model, run in a child process: what it imports (the export layer, protobuf, PyTorch's
    meta device) would stay in the server and, by the allocations it frees, make glibc keep far more of
    the backend's memory after a burst of requests (measured: +0.2 to +0.4 GB in tests/serve's overload test)."""
    import json
    import subprocess
    import sys

    from ..errors import HidaError, first_line
    from .v2_model import V2Model

    code = ("import json, sys; from hida_rt.serve.__main__ import describe_v2_model as d; "
            "print(json.dumps(d(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]))))")
    done = subprocess.run([sys.executable, "-c", code, str(settings.size), str(settings.max_batch),
                           str(settings.max_wait_ms)], capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0 or not done.stdout.strip():
        reason = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"
        raise HidaError(f"could not describe the model for the Open Inference Protocol: {first_line(reason)}")
    return V2Model.from_json(json.loads(done.stdout.strip().splitlines()[-1]))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from ._deps import require_serve

    require_serve()
    check_ray_args(args)
    settings = settings_from_args(args)
    weights = Path(args.weights)
    if not weights.is_file():
        raise CheckpointError(f"{weights}: no such weights file")
    if args.ray:
        return run_on_ray(args, settings, v2=v2_model(settings))
    from ..backends import resolve

    # Cheap: says now, not after binding, if the backend cannot run here.
    resolve(args.backend, weights=args.weights, device=args.device, onnx=args.onnx, engine=args.engine)
    from .core import SketchService
    from .server import serve

    service = SketchService(lambda: backend_from_args(args, progress=True), settings, weights=weights)
    return serve(settings, service, log_level=args.log_level, access_log=args.access_log,
                 announce=lambda line: print(line, flush=True), v2=v2_model(settings))


if __name__ == "__main__":
    raise SystemExit(run_cli(main, prog="hida_rt.serve"))
