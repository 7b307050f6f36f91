"""The FastAPI app: routes, JSON errors, API key and limits, metrics, the live page.

create_app(service, settings) builds it around a SketchService and a
batcher (the in-process DynamicBatcher unless one is given, e.g. Ray
Serve's), so the same app runs under uvicorn here or as a Ray Serve ingress.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import anyio
from fastapi import FastAPI, File, Query, Request, UploadFile, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

from ..errors import HidaError, first_line
from .batcher import Batcher, DynamicBatcher
from .core import SketchService, parse_style
from .errors import BadRequest, NotInstalled, Unavailable, UpgradeRequired, status_of
from .guard import Admission, Guard, MetricsMiddleware
from .metrics import Metrics
from .settings import Settings

log = logging.getLogger("hida_rt.serve")
STATIC = Path(str(resources.files("hida_rt.serve") / "static"))
# The page loads only its own script and style; frames go to its own origin's WebSocket.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob: mediastream:; "
                               "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
ERROR_RESPONSES = {s: {"description": d, "content": {"application/json": {"example": {"error": d}}}} for s, d in (
    (400, "unreadable image, bad style, mismatched depth map, or a field missing, repeated or not a file"),
    (401, "missing or wrong API key"), (408, "the body did not arrive in time (--body-timeout, --min-body-rate-kb)"),
    (413, "body or pixel count over a limit"), (415, "not multipart/form-data, or an image format not accepted"),
    (422, "no face found (no depth map given)"), (431, "request headers over a limit"),
    (501, "the face extra is not installed"), (503, "overloaded or still loading; see Retry-After"))}
# Swagger UI's files for /docs, served from the fastapi-offline package (no CDN: the page works offline).
DOCS_ASSETS = "/docs-assets"
UPLOAD_FIELDS = ("photo", "depth")


@dataclass
class AppState:
    service: SketchService
    settings: Settings
    batcher: Batcher
    metrics: Metrics
    cpu: anyio.CapacityLimiter | None = None
    started: float = field(default_factory=time.monotonic)
    requests: Admission | None = None  # inference requests in progress (HTTP and gRPC share it)

    async def cpu_work(self, fn: Callable, *args):
        """Decode / face front end / encode in a worker thread, at most settings.cpu_workers at once."""
        return await anyio.to_thread.run_sync(fn, *args, limiter=self.cpu)

    def require_ready(self) -> None:
        if not self.service.ready:
            raise Unavailable("the model is still loading" if self.service.load_error is None
                              else "the model failed to load", retry_after=5)


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": first_line(Exception(message), 300) if message else "error"}, status_code=status,
                        headers=headers)


def create_app(service: SketchService, settings: Settings | None = None, *, batcher: Batcher | None = None,
               metrics: Metrics | None = None,
               on_load_error: Callable[[BaseException], None] | None = None, v2=None,
               services: Sequence = ()) -> FastAPI:
    """The service's ASGI app. If the service is not loaded yet, it loads in the background at start-up
    (GET /healthz answers 503 until then); on_load_error is told if that fails.

    v2: a v2_model.V2Model mounts the Open Inference Protocol's REST routes (v2_rest). services: objects
    with `async start(state)` / `async stop()` run for the app's lifetime on its event loop (the gRPC
    server, v2_grpc.GrpcService); one that fails to start is reported like a model that failed to load."""
    settings = settings or service.settings
    metrics = metrics or Metrics(settings.max_batch)
    if batcher is None:
        batcher = DynamicBatcher(service.run_batch, max_batch=settings.max_batch, max_wait_s=settings.max_wait_s,
                                 max_queue=settings.max_queue, on_batch=metrics.observe_batch)
    metrics.queue_depth.set_function(lambda: batcher.depth)
    state = AppState(service, settings, batcher, metrics)
    requests = Admission(settings.max_queue, settings.per_client_requests, "sketch requests", metrics.in_flight.set)
    state.requests = requests
    streams = Admission(settings.max_streams, settings.per_client_streams, "live streams", metrics.streams.set)

    def loaded() -> None:
        metrics.backend.info({"backend": service.backend.name, "size": str(settings.size)})
        log.info("model loaded: backend %s, size %d", service.backend.name, settings.size)

    async def load() -> None:
        try:
            await asyncio.to_thread(service.load)
        except Exception as e:  # reported; /healthz says so
            if on_load_error is not None:
                on_load_error(e)
            else:
                log.error("the model failed to load: %s", first_line(e))
            return
        loaded()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        state.cpu = anyio.CapacityLimiter(settings.cpu_workers)
        await batcher.start()
        loader = None
        if service.ready:
            loaded()
        else:
            loader = asyncio.create_task(load())
        started = []
        try:
            for extra in services:
                try:
                    await extra.start(state)
                except Exception as e:  # reported as a failed start: the server exits with this one line
                    if on_load_error is None:
                        raise
                    on_load_error(e)
                    break
                started.append(extra)
            yield
        finally:
            for extra in reversed(started):  # their in-flight calls finish while the batcher still runs
                await extra.stop()
            await batcher.stop()  # in-flight requests finished before uvicorn got here
            if loader is not None:
                await loader
            await asyncio.to_thread(service.close)

    middleware = [Middleware(MetricsMiddleware, metrics=metrics)]
    if settings.cors_origins:
        middleware.append(Middleware(CORSMiddleware, allow_origins=list(settings.cors_origins),
                                     allow_methods=["GET", "POST"], allow_headers=["Authorization"],
                                     expose_headers=["Retry-After", "Server-Timing", "X-Hida-Input"], max_age=600))
    middleware.append(Middleware(Guard, settings=settings, requests=requests, streams=streams,
                                 on_reject=lambda reason: metrics.rejected.labels(reason).inc(),
                                 retry_after=getattr(batcher, "retry_after", lambda: 1.0)))
    app = FastAPI(title="hida_rt sketch service", version="1",
                  summary="HIDA pencil sketches of face photos, single images or a live stream",
                  lifespan=lifespan, middleware=middleware, docs_url=None, redoc_url=None,
                  form_limits={"max_files": 2, "max_fields": 4})
    app.state.hida = state
    # A malformed multipart body is answered 400; python-multipart would also print it on stderr.
    logging.getLogger("python_multipart").setLevel(logging.ERROR)

    # -- errors: always {"error": "one line"} -------------------------------------
    @app.exception_handler(HidaError)
    async def hida_error(request: Request, e: HidaError):
        return error_response(status_of(e), str(e), getattr(e, "headers", None))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, e: StarletteHTTPException):
        message = {404: f"no route {request.url.path}", 405: f"{request.method} is not allowed on {request.url.path}",
                   413: f"the request body is over the limit of {settings.max_body_bytes:,} bytes"}.get(e.status_code)
        return error_response(e.status_code, message or str(e.detail), getattr(e, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, e: RequestValidationError):
        errors = e.errors()
        first = errors[0] if errors else {}
        loc = first.get("loc", ())
        where = ".".join(str(x) for x in loc[1:]) or "request"
        what = first.get("msg", "invalid")
        if first.get("type") == "missing":
            what = "required (a multipart file field)" if loc[:1] == ("body",) else "required"
        elif loc[:1] == ("body",) and where in UPLOAD_FIELDS:
            what = "must be a file (a multipart part with a filename), not a text field"
        return error_response(400, f"{where}: {what}")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, e: Exception):
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(500, f"internal error ({type(e).__name__}); the server log has the details")

    # -- routes ----------------------------------------------------------------------
    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC / "index.html", headers=PAGE_HEADERS)

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon():
        return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    add_api_docs(app)

    @app.get("/healthz", summary="Readiness: 200 once the model is loaded, 503 before",
             responses={503: ERROR_RESPONSES[503]})
    async def healthz():
        return service.info()

    @app.get("/metrics", summary="Prometheus metrics (text format)", response_class=Response)
    async def prometheus():
        return Response(metrics.render(), media_type=metrics.content_type)

    @app.post("/v1/sketch", summary="Sketch one photo", response_class=Response,
              responses={200: {"content": {"image/png": {}}, "description": "the sketch, grey PNG"},
                         **ERROR_RESPONSES})
    async def sketch(request: Request,
                     photo: UploadFile = File(..., description="the photo (PNG, JPEG, WebP, BMP or TIFF)"),
                     # Not `UploadFile | None`: the schema would then offer `null`, which is no file.
                     depth: UploadFile = File(None, description="its depth map, grey, bright = near; "
                                              "without it the largest face is found and its depth estimated"),
                     style: str = Query(settings.default_style, max_length=100,
                                        description="FS2K style 1, 2 or 3, or a mix of the three: 0.5,0,0.5")):
        state.require_ready()
        form = await request.form()  # already parsed for the parameters above: no second read
        for name in UPLOAD_FIELDS:
            if len(form.getlist(name)) > 1:
                raise BadRequest(f"{name}: sent {len(form.getlist(name))} times; send one")
        style_vec = parse_style(style)
        photo_bytes = await photo.read()
        depth_bytes = await depth.read() if depth is not None else None
        t0 = time.perf_counter()
        job = await state.cpu_work(service.prepare, photo_bytes, depth_bytes, style_vec)
        del photo_bytes, depth_bytes
        t1 = time.perf_counter()
        sketch = await batcher.submit(job.net)
        t2 = time.perf_counter()
        png = await state.cpu_work(service.encode, job, sketch)
        t3 = time.perf_counter()
        timing = f"prepare;dur={1e3 * (t1 - t0):.1f}, sketch;dur={1e3 * (t2 - t1):.1f}, encode;dur={1e3 * (t3 - t2):.1f}"
        return Response(png, media_type="image/png",
                        headers={"Server-Timing": timing, "X-Hida-Input": "aligned-face" if job.aligned else "photo+depth"})

    @app.get("/v1/stream", include_in_schema=False)
    async def stream_without_upgrade():
        raise UpgradeRequired("/v1/stream is a WebSocket: connect with an upgrade (ws://HOST:PORT/v1/stream); "
                              "see docs/serve.md", headers={"Upgrade": "websocket", "Connection": "Upgrade"})

    @app.websocket("/v1/stream")
    async def stream(websocket: WebSocket):
        from .stream import serve_stream

        await serve_stream(websocket, state)

    if v2 is not None:
        from .v2_rest import add_v2_routes

        add_v2_routes(app, state, v2)
    return app


def add_api_docs(app: FastAPI) -> None:
    """/docs (Swagger UI), its script and style served from the fastapi-offline package; without it (an older
    install of the serve extra) the page says so instead of loading a CDN. No /redoc: ReDoc's page still
    fetches its logo from a CDN."""
    from fastapi.openapi.docs import get_swagger_ui_html

    try:
        assets = Path(str(resources.files("fastapi_offline") / "static"))
    except ModuleNotFoundError:
        assets = None
    if assets is not None:
        app.mount(DOCS_ASSETS, StaticFiles(directory=assets), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui():
        if assets is None:
            raise NotInstalled("the API page needs the fastapi-offline package (pip install 'hida_rt[serve]'); "
                               "the schema itself is at /openapi.json")
        return get_swagger_ui_html(openapi_url=app.openapi_url, title=f"{app.title} - API",
                                   swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
                                   swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
                                   swagger_ui_parameters={"validatorUrl": None})  # no badge from swagger.io
