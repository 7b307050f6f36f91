"""The sketch service core, free of any web framework: bytes in, network inputs, sketches, PNG/JPEG out.

A request goes through three steps, and only the middle one touches the model:

1. prepare (CPU, any thread): decode and check the upload, then either pair
   photo and depth map as `python -m hida_rt.sketch` does, or find the
   largest face and estimate its depth as the CLI does without --depth;
   the result is one `NetInput` (tensors at the network size) per face;
2. run_batch (the backend): many NetInputs from many requests in ONE
   backend call. A batcher decides which go together: the in-process
   DynamicBatcher here, or Ray Serve's @serve.batch in a replica;
3. encode (CPU, any thread): the sketch resized back and written as PNG.

A live stream does the same per frame through StreamSession, on the path
hida_rt.video takes (hida_rt.video.modes.FaceMode: face front end with
One-Euro smoothing, backend, feathered paste-back into the frame).
"""
from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .. import images, styles
from ..backends import Backend
from ..errors import InputError, MissingDependency
from .errors import BadRequest, NoFaceFound, NotInstalled, Unavailable
from .settings import FRAME_FORMATS, UPLOAD_FORMATS, Settings

FACE_SIZE = 256  # the face front end's aligned template; a sketch without a depth map has this size
JPEG_QUALITY = 85
MAX_STYLE_TEXT = 100


@dataclass(frozen=True)
class NetInput:
    """One network input: photo 1×3×S×S in [-1, 1], depth 1×1×S×S in [0, 1], style (3,) in channel order."""

    photo: torch.Tensor
    depth: torch.Tensor
    style: torch.Tensor

    @property
    def shape(self) -> tuple[int, ...]:
        """Inputs of one shape can share a backend call."""
        return tuple(self.photo.shape[1:])


@dataclass(frozen=True)
class StillJob:
    net: NetInput
    out_size: tuple[int, int]  # (width, height) the sketch is resized back to
    aligned: bool  # True: a face found and aligned (depth estimated); False: the given photo + depth


def parse_style(text: str) -> torch.Tensor:
    """"1" | "2" | "3" | "w1,w2,w3" -> the generator's style vector; BadRequest otherwise."""
    if len(text) > MAX_STYLE_TEXT:
        raise BadRequest(f"style is longer than {MAX_STYLE_TEXT} characters")
    try:
        return styles.parse_style(text)
    except InputError as e:
        msg = str(e)
        # hida_rt.styles words its errors for the CLI's --style.
        raise BadRequest("style " + msg[len("--style "):] if msg.startswith("--style ") else msg) from None


def encode_png(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG", compress_level=1)  # fast; the pixels are the same at any level
    return buf.getvalue()


def encode_jpeg(rgb: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


class SketchService:
    """The model behind the service, loaded once; thread-safe as documented per method.

    load_backend: builds the backend (slow: weights, maybe an ONNX export);
    called once by load(), so a server can listen (and answer /healthz 503)
    while it runs.
    """

    def __init__(self, load_backend: Callable[[], Backend], settings: Settings, weights: str | Path | None = None):
        self._load_backend = load_backend
        self.settings = settings
        self.weights = Path(weights) if weights is not None else None
        self.backend: Backend | None = None
        self.weights_sha256: str | None = None
        self.load_error: BaseException | None = None
        self._faces = None  # FaceFrontEnd for stills, made on first use
        self._faces_lock = threading.Lock()  # MediaPipe graphs: one caller at a time

    # -- life cycle -------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return self.backend is not None

    def load(self) -> None:
        """Load the backend (once). Errors are kept in load_error and re-raised."""
        if self.backend is not None:
            return
        try:
            with ThreadPoolExecutor(1) as pool:  # hashing (GIL released) overlaps loading
                sha = None
                if self.weights is not None and self.weights.is_file():
                    from ..checkpoint import file_sha256

                    sha = pool.submit(file_sha256, self.weights)
                backend = self._load_backend()
                sha = sha.result() if sha is not None else None
            # One call before serving: the first pays one-off costs (allocations, sessions, kernel choice).
            n = self.settings.size
            backend.run(torch.zeros(1, 3, n, n), torch.zeros(1, 1, n, n), torch.full((1, 3), 1 / 3))
            self.weights_sha256, self.backend = sha, backend
        except BaseException as e:
            self.load_error = e
            raise

    def info(self) -> dict:
        if self.backend is None:
            raise Unavailable("the model is still loading" if self.load_error is None else "the model failed to load")
        return {"status": "ok", "backend": self.backend.name, "size": self.settings.size,
                "weights_sha256": (self.weights_sha256 or "")[:16] or None,
                "max_batch": self.settings.max_batch, "api_key_required": bool(self.settings.api_key)}

    def close(self) -> None:
        with self._faces_lock:
            if self._faces is not None:
                self._faces.close()
                self._faces = None

    # -- step 1: prepare (any thread) ---------------------------------------------
    def prepare(self, photo: bytes, depth: bytes | None, style: torch.Tensor) -> StillJob:
        """An upload -> its network input. With a depth map: exactly the sketch CLI's preprocessing
        (images.decode_image, images.pair_to_tensors); without: the largest face, aligned, with its
        estimated depth (422 if there is none)."""
        s = self.settings
        size = (s.size, s.size)
        photo_im = images.decode_image(photo, "RGB", "photo", max_pixels=s.max_pixels, formats=UPLOAD_FORMATS)
        if depth is not None:
            depth_im = images.decode_image(depth, "L", "depth", max_pixels=s.max_pixels, formats=UPLOAD_FORMATS)
            p, d, out_size = images.pair_to_tensors(photo_im, depth_im, size, "photo", "depth")
            return StillJob(NetInput(p, d, style), out_size, aligned=False)
        face = self._largest_face(np.asarray(photo_im))
        net = NetInput(images.photo_to_tensor(face.photo, size), images.depth_to_tensor(face.depth, size), style)
        return StillJob(net, (FACE_SIZE, FACE_SIZE), aligned=True)

    def _largest_face(self, rgb: np.ndarray):
        with self._faces_lock:
            try:
                if self._faces is None:
                    from ..face import FaceFrontEnd

                    self._faces = FaceFrontEnd(max_faces=1)
                faces = self._faces.process(rgb)
            except MissingDependency as e:
                raise NotInstalled(f"sketching without a depth map needs the face extra: {e}") from None
            except InputError as e:  # an image too small to hold a face: no face, as documented (422)
                raise NoFaceFound(f"photo: no face found: {e}; send a photo with a face, or a depth map with it") \
                    from None
        if not faces:
            raise NoFaceFound("photo: no face found; send a photo with a face, or a depth map with it")
        return faces[0]

    # -- step 2: the network (one thread at a time) ----------------------------------
    def run_batch(self, items: Sequence[NetInput]) -> list[torch.Tensor]:
        """Network inputs of one shape -> their sketches (1×S×S in [-1, 1], CPU), in one backend call."""
        if self.backend is None:
            raise Unavailable("the model is still loading")
        photo = torch.cat([i.photo for i in items])
        depth = torch.cat([i.depth for i in items])
        style = torch.stack([i.style.reshape(3) for i in items]).contiguous()
        out = self.backend.run(photo, depth, style)
        return list(out.detach().float().cpu())

    # -- step 3: encode (any thread) --------------------------------------------------
    @staticmethod
    def encode(job: StillJob, sketch: torch.Tensor) -> bytes:
        """The sketch, resized back as the CLI does (images.sketch_to_image), as PNG."""
        return encode_png(images.sketch_to_image(sketch, job.out_size))

    # -- live frames --------------------------------------------------------------------
    def open_stream(self) -> StreamSession:
        """A per-connection session (its own face tracking and smoothing); NotInstalled without the face extra."""
        return StreamSession(self.settings)


@dataclass
class FramePlan:
    """A live frame between prepare and finish: the video pipeline's Work plus this frame's timings (ms)."""

    work: object  # hida_rt.video.pipeline.Work
    inputs: list[NetInput]
    timings: dict[str, float]


class StreamSession:
    """One live stream: frames through hida_rt.video's face path, with One-Euro smoothing kept across frames.

    Not thread-safe; call it for one frame at a time (the stream handler does).
    """

    def __init__(self, settings: Settings):
        try:
            from ..face import Smoothing
            from ..video.modes import FaceMode

            self._mode = FaceMode(max_faces=1, smoothing=Smoothing(), no_face="pass")
        except MissingDependency as e:
            raise NotInstalled(f"the live stream needs the face extra: {e}") from None
        self.settings = settings
        self._frames = 0
        self._start = time.monotonic()

    def prepare(self, data: bytes, style: torch.Tensor, received: float | None = None) -> FramePlan:
        from ..video.io import Frame

        s = self.settings
        t0 = time.perf_counter()
        rgb = np.asarray(images.decode_image(data, "RGB", "frame", max_pixels=s.max_frame_pixels,
                                             formats=FRAME_FORMATS))
        t1 = time.perf_counter()
        # The filter's clock: when the frame arrived (frames are dropped, so they are not evenly spaced).
        frame = Frame(self._frames, rgb, (received if received is not None else time.monotonic()) - self._start)
        self._frames += 1
        work = self._mode.prepare(frame)
        t2 = time.perf_counter()
        inputs = [NetInput(p, d, style) for p, d in zip(work.photos, work.depths)]
        return FramePlan(work, inputs, {"decode": 1e3 * (t1 - t0), "face": 1e3 * (t2 - t1)})

    def finish(self, plan: FramePlan, sketches: Sequence[torch.Tensor]) -> bytes:
        t0 = time.perf_counter()
        plan.work.sketches = [images.sketch_to_uint8(s) for s in sketches]
        out = self._mode.composite(plan.work)
        t1 = time.perf_counter()
        jpeg = encode_jpeg(out)
        plan.timings.update(composite=1e3 * (t1 - t0), encode=1e3 * (time.perf_counter() - t1))
        return jpeg

    def close(self) -> None:
        self._mode.close()
