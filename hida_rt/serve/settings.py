"""What one sketch service is allowed to do: where it listens, its batching, its limits, who may call it."""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from .. import memory
from ..errors import InputError
from ..model import SIZE_MULTIPLE

# Hosts that mean "this machine only": bound to one of these the service is open to local clients.
LOCAL_HOSTS = ("127.0.0.1", "::1", "localhost")
# Image formats accepted for uploads (those the sketch CLI reads) and for live frames.
UPLOAD_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "TIFF")
FRAME_FORMATS = ("JPEG", "PNG", "WEBP")
MIN_API_KEY = 16
# A body gets this long before --min-body-rate applies (a client's first packets may be slow to start).
BODY_GRACE_S = 5.0
# Settings whose command-line option is not simply the field's name with dashes.
OPTION_NAMES = {"idle_timeout_s": "idle-timeout", "header_timeout_s": "header-timeout", "body_timeout_s": "body-timeout",
                "stream_idle_s": "stream-idle-timeout", "max_header_bytes": "max-header-kb",
                "min_body_rate": "min-body-rate-kb", "client_connections": "max-connections-per-client"}


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    size: int = 256  # network resolution of uploaded pairs (the face front end's template is 256)
    max_batch: int = 8  # network inputs per backend call
    max_wait_ms: float = 5.0  # how long a batch waits for company once its first input arrived
    max_queue: int = 64  # sketch requests admitted at once (decoding, waiting or computing); more get 503
    client_share: float = 0.5  # the fraction of max_queue (and of max_streams) one client address may hold
    max_streams: int = 4  # live WebSocket streams at once
    max_body_bytes: int = 20 * 2**20
    max_pixels: int = 4096 * 4096  # per uploaded image, checked from its header before decoding
    max_frame_bytes: int = 4 * 2**20  # one WebSocket message
    max_frame_pixels: int = 3840 * 2160
    api_key: str | None = field(default=None, repr=False)
    cors_origins: tuple[str, ...] = ()
    cpu_workers: int = 4  # decode / face front end / encode work done at once (bounds their memory)
    default_style: str = "2"
    grpc_port: int | None = None  # the Open Inference Protocol over gRPC on this port (0: a free one); None: off
    # Connection and protocol limits (docs/serve.md, "Limits"): what a slow, idle or oversized client may hold.
    max_connections: int = 256  # open TCP connections (WebSocket streams included); more are answered 503
    client_connections: int = 32  # of those, from one client address
    idle_timeout_s: float = 5.0  # a connection that sends nothing this long (before or between requests) is closed
    header_timeout_s: float = 10.0  # the request line and headers must be complete this long after the connection
    max_header_bytes: int = 16 * 2**10  # request line + headers; more: 431
    max_headers: int = 100  # header fields; more: 431
    body_timeout_s: float = 30.0  # the whole body must have arrived this long after its headers; else 408
    min_body_rate: int = 32 * 2**10  # bytes/s a body must keep up after BODY_GRACE_S; else 408
    stream_idle_s: float = 60.0  # a live stream that sends no frame this long is closed

    @property
    def local_only(self) -> bool:
        """Bound to this machine only, so no key is needed (one may still be set)."""
        return self.host in LOCAL_HOSTS

    @property
    def per_client_requests(self) -> int:
        return max(1, int(self.max_queue * self.client_share))

    @property
    def per_client_streams(self) -> int:
        return max(1, int(self.max_streams * self.client_share))

    @property
    def client_connection_limit(self) -> int:
        return min(self.client_connections, self.max_connections)

    @property
    def max_wait_s(self) -> float:
        return self.max_wait_ms / 1000.0

    def check(self) -> Settings:
        """One-line InputError for a setting that cannot work; returns self."""
        if self.size <= 0 or self.size % SIZE_MULTIPLE:
            raise InputError(f"--size {self.size} is not a positive multiple of {SIZE_MULTIPLE}")
        if self.max_batch >= 1:
            memory.check_fits(self.size, self.size, self.max_batch, multiple=SIZE_MULTIPLE)
        if not 0 <= self.port <= 65535:
            raise InputError(f"--port {self.port} is not a TCP port (0-65535; 0 picks a free one)")
        if self.grpc_port is not None and not 0 <= self.grpc_port <= 65535:
            raise InputError(f"--grpc-port {self.grpc_port} is not a TCP port (0-65535; 0 picks a free one)")
        if self.grpc_port is not None and self.grpc_port == self.port != 0:
            raise InputError(f"--grpc-port {self.grpc_port} is the HTTP --port too: give gRPC a port of its own")
        for name in ("max_batch", "max_queue", "max_streams", "max_body_bytes", "max_pixels", "max_frame_bytes",
                     "max_frame_pixels", "cpu_workers"):
            if getattr(self, name) < 1:
                raise InputError(f"--{name.replace('_', '-')} must be at least 1")
        for name in ("max_connections", "client_connections", "max_header_bytes", "max_headers", "min_body_rate"):
            if getattr(self, name) < 1:
                raise InputError(f"--{OPTION_NAMES.get(name, name.replace('_', '-'))} must be at least 1")
        for name in ("idle_timeout_s", "header_timeout_s", "body_timeout_s", "stream_idle_s"):
            if not 0 < getattr(self, name) <= 86_400:
                raise InputError(f"--{OPTION_NAMES[name]} must be between 0 and 86400 seconds, got {getattr(self, name)}")
        if not 0 <= self.max_wait_ms <= 10_000:
            raise InputError(f"--max-wait-ms must be between 0 and 10000, got {self.max_wait_ms}")
        if not 0 < self.client_share <= 1:
            raise InputError(f"--client-share must be in (0, 1], got {self.client_share}")
        if not self.local_only and not self.api_key:
            raise InputError(f"--host {self.host} makes the service reachable from other machines: give an API "
                             "key (--api-key or HIDA_API_KEY), or bind 127.0.0.1")
        if self.api_key is not None and (len(self.api_key) < MIN_API_KEY or not self.api_key.isprintable()
                                         or " " in self.api_key):
            raise InputError(f"the API key must be at least {MIN_API_KEY} printable characters without spaces "
                             "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')")
        for origin in self.cors_origins:
            if origin != "*" and not origin.startswith(("http://", "https://")):
                raise InputError(f"--cors-origin {origin!r} is not an origin like https://app.example.com")
        return self


def is_loopback_name(host: str) -> bool:
    """A Host header's name that only this machine can mean (localhost, 127.0.0.0/8, ::1)."""
    name = host.strip().lower()
    if name.startswith("["):
        name = name[1:].split("]", 1)[0]
    elif name.count(":") == 1:
        name = name.split(":", 1)[0]
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
