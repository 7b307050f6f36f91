"""Prometheus metrics of one app (its own registry, so two apps in one process do not mix)."""
from __future__ import annotations

import re

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    generate_latest,
)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Routes as metric labels: the route template, never the raw path (unbounded label values).
ROUTES = ("/", "/healthz", "/metrics", "/v1/sketch", "/v1/stream", "/docs", "/openapi.json", "/docs/oauth2-redirect",
          "/redoc")
# Open Inference Protocol routes: the model name and version collapse into the template.
V2_ROUTES = ("/v2", "/v2/health/live", "/v2/health/ready")
V2_MODEL_ROUTE = re.compile(r"/v2/models/[^/]+(?:/versions/[^/]+)?(/ready|/config|/infer)?")


def route_label(path: str) -> str:
    if path in ROUTES or path in V2_ROUTES:
        return path
    m = V2_MODEL_ROUTE.fullmatch(path)
    if m:
        return "/v2/models/{model}" + (m.group(1) or "")
    if path.startswith("/static/"):
        return "/static"
    return "other"


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, max_batch: int = 8):
        r = self.registry = CollectorRegistry(auto_describe=True)
        labels = ("route", "method", "status")
        self.requests = Counter("hida_http_requests", "HTTP requests answered, by route, method and status", labels,
                                registry=r)
        self.latency = Histogram("hida_http_request_duration_seconds", "Time to answer an HTTP request", labels,
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.in_flight = Gauge("hida_http_in_flight_requests", "Sketch requests admitted and not yet answered",
                               registry=r)
        self.rejected = Counter("hida_rejected", "Requests and frames refused before any work, by reason",
                                ("reason",), registry=r)
        sizes = sorted({1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, max_batch})
        self.batch_size = Histogram("hida_batch_size", "Network inputs per backend call",
                                    buckets=[b for b in sizes if b <= max_batch], registry=r)
        self.backend_seconds = Histogram("hida_backend_batch_duration_seconds", "Time of one backend call",
                                         buckets=LATENCY_BUCKETS, registry=r)
        self.queue_depth = Gauge("hida_queue_depth", "Network inputs waiting for a backend call", registry=r)
        self.backend = Info("hida_backend", "The backend serving the model", registry=r)
        self.streams = Gauge("hida_stream_connections", "Live WebSocket streams open", registry=r)
        self.stream_frames = Counter("hida_stream_frames", "Live frames, by outcome (sketched, dropped, error; idle_closed: streams closed for sending nothing)",
                                     ("outcome",), registry=r)
        self.stream_seconds = Histogram("hida_stream_frame_duration_seconds",
                                        "Server time per sketched live frame (decode to encoded reply)",
                                        buckets=LATENCY_BUCKETS, registry=r)

        # The Open Inference Protocol over gRPC (its REST routes are counted in hida_http_requests).
        self.grpc_requests = Counter("hida_grpc_requests", "gRPC calls answered, by method and status code",
                                     ("method", "code"), registry=r)
        self.grpc_latency = Histogram("hida_grpc_request_duration_seconds", "Time to answer a gRPC call",
                                      ("method",), buckets=LATENCY_BUCKETS, registry=r)

    def observe_batch(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.backend_seconds.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
