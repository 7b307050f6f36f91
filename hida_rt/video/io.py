"""Video in and out for hida_rt.video: PyAV decoding, webcams through OpenCV, H.264 encoding.

Needs the optional `video` extra (PyAV; 18.1.0's cp311 abi3 wheel bundles
FFmpeg with libx264). Webcams also need OpenCV, from the `face` extra.
"""
from __future__ import annotations

import contextlib
import importlib
import os
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import ModuleType
from typing import Iterator

import numpy as np

from ..errors import first_line, HidaError, InputError, MissingDependency

VIDEO_INSTALL = "pip install av==18.1.0"
OUTPUT_SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv")
# Output timestamps: input times (seconds) on the MPEG clock, so variable-rate
# inputs and webcams keep their timing and copied audio stays in sync.
TIME_BASE = Fraction(1, 90000)
MP4_AUDIO_CODECS = frozenset({"aac", "mp3", "alac", "ac3", "eac3", "opus"})
# A file whose header promises more frames than decode yields by more than this was cut short.
TRUNCATION_SLACK = 2
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
# x264's "veryfast" costs ~3x the CPU of "ultrafast" per frame, more than the rest of the host
# path together: on a machine with fewer cores than this it would hold the pipeline (and a GPU
# backend) back, so "auto" trades file size (4-6x bigger at one --crf) for speed there.
VERYFAST_MIN_CORES = 8


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_preset(cores: int | None = None) -> str:
    """The x264 preset of --preset auto: "veryfast" with cores to spare for it, else "ultrafast"."""
    return "veryfast" if (cores or available_cores()) >= VERYFAST_MIN_CORES else "ultrafast"


def require_av() -> ModuleType:
    try:
        return importlib.import_module("av")
    except ImportError as e:
        raise MissingDependency(f"video needs PyAV ({e}); install it with: {VIDEO_INSTALL}") from None


def _first_line(e: BaseException) -> str:
    """The error as one line (hida_rt.errors.first_line): for PyAV's errors, OSErrors, their strerror,
    which is FFmpeg's reason without the errno and file name that str() adds."""
    return first_line(e)


@dataclass
class Frame:
    """A decoded frame: H×W×3 uint8 RGB and its time in seconds (input clock)."""

    index: int
    image: np.ndarray
    time: float


class FileReader:
    """Decode a video file's first video stream with PyAV, frames turned upright.

    The first frame is decoded on opening, so a file that cannot be decoded
    fails before a model is loaded or an output file is begun, and so the
    frame size is known after rotation.
    """

    def __init__(self, path: str | Path):
        av = self._av = require_av()
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"{self.path}: no such video file")
        try:
            self._container = av.open(str(self.path))
        except av.FFmpegError as e:
            raise InputError(f"{self.path}: cannot read as a video ({_first_line(e)})") from None
        try:
            if not self._container.streams.video:
                raise InputError(f"{self.path}: has no video stream")
            self._stream = self._container.streams.video[0]
            self._stream.thread_type = "AUTO"  # frame+slice threads: decoding keeps up with 1080p
            rate = self._stream.average_rate or self._stream.guessed_rate
            self.fps = Fraction(rate) if rate else Fraction(25)
            self.frame_count = self._stream.frames or None
            self.has_audio = bool(self._container.streams.audio)
            self.name = str(self.path)
            self._decoded = 0
            self._frames = self._decode()
            self._first = next(self._frames, None)
            if self._first is None:
                raise InputError(f"{self.path}: no frame could be decoded")
        except BaseException:
            self._container.close()
            raise
        self.height, self.width = self._first.image.shape[:2]

    def _decode(self) -> Iterator[Frame]:
        try:
            for frame in self._container.decode(self._stream):
                t = float(frame.time) if frame.time is not None else self._decoded / float(self.fps)
                image = frame.to_ndarray(format="rgb24")
                # Phones store portrait video as landscape plus a display
                # rotation; faces are only found upright.
                quarter_turns = round((frame.rotation or 0) / 90) % 4
                if quarter_turns:
                    image = np.ascontiguousarray(np.rot90(image, quarter_turns))
                yield Frame(self._decoded, image, t)
                self._decoded += 1
        except self._av.FFmpegError as e:
            raise InputError(f"{self.path}: corrupt or truncated video after frame {self._decoded} "
                             f"({_first_line(e)})") from None

    def frames(self) -> Iterator[Frame]:
        yield self._first
        yield from self._frames
        if self.frame_count and self._decoded + TRUNCATION_SLACK < self.frame_count:
            raise InputError(f"{self.path}: truncated video: {self._decoded} of {self.frame_count} frames decoded")

    def stop(self) -> None:
        """Files end by themselves; nothing to do (webcams need this)."""

    def close(self) -> None:
        self._container.close()


class CaptureReader:
    """Frames from a webcam (or anything cv2.VideoCapture opens) until stop() or `max_frames`."""

    def __init__(self, source: int | str):
        from ..face._deps import require_cv2

        cv2 = self._cv2 = require_cv2()
        self.name = f"webcam {source}" if isinstance(source, int) else str(source)
        # OpenCV warns on stderr about every backend it tries and fails with;
        # the one-line error below says it all.
        level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
        try:
            self._capture = cv2.VideoCapture(source)
        finally:
            cv2.utils.logging.setLogLevel(level)
        if not self._capture.isOpened():
            raise InputError(f"cannot open {self.name}")
        ok, first = self._capture.read()
        if not ok:
            self._capture.release()
            raise InputError(f"{self.name} gives no frames")
        self._first = first
        self.height, self.width = first.shape[:2]
        fps = self._capture.get(cv2.CAP_PROP_FPS)
        self.fps = Fraction(fps).limit_denominator(1001) if fps and 1 <= fps <= 240 else Fraction(30)
        self.frame_count = None  # live: unknown
        self.has_audio = False
        self._stop = threading.Event()

    def frames(self) -> Iterator[Frame]:
        cv2 = self._cv2
        start = time.monotonic()
        image, index = self._first, 0
        while image is not None and not self._stop.is_set():
            # Wall-clock times: a webcam drops or delays frames under load.
            yield Frame(index, cv2.cvtColor(image, cv2.COLOR_BGR2RGB), time.monotonic() - start)
            index += 1
            ok, image = self._capture.read()
            if not ok:
                image = None

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        self._capture.release()


def open_source(source: str) -> FileReader | CaptureReader:
    """A file path, or a webcam as "webcam", "webcam:N" or a bare index N (when no such file exists)."""
    if not Path(source).exists():
        if source == "webcam":
            return CaptureReader(0)
        if source.startswith("webcam:") and source[7:].isdigit():
            return CaptureReader(int(source[7:]))
        if source.isdigit():
            return CaptureReader(int(source))
    return FileReader(source)


class _AudioPassThrough:
    """Copy (or, where the container cannot hold the codec, re-encode to AAC) the input's first audio stream.

    Reads the input a second time, audio packets only, so the decode stage
    never has to carry audio through the pipeline; packets are muxed up to
    the time of each video frame written, which keeps the file interleaved.
    """

    def __init__(self, av: ModuleType, source: Path, output):
        self._av = av
        self._input = av.open(str(source))
        try:
            self._setup(output)
        except Exception:
            self._input.close()  # not leaked when the output cannot take this audio
            raise

    def _setup(self, output) -> None:
        self._in_stream = self._input.streams.audio[0]
        name = self._in_stream.codec_context.name
        # Matroska holds any codec. MP4/MOV's muxer claims more than it can
        # write without "experimental" flags (vorbis, flac); copy only the
        # codecs those files normally carry and re-encode the rest.
        self._copy = name in MP4_AUDIO_CODECS or output.format.name == "matroska"
        if self._copy:
            self._out_stream = output.add_stream_from_template(self._in_stream)
        else:
            self._out_stream = output.add_stream("aac", rate=self._in_stream.codec_context.sample_rate or 48000)
        self._output = output
        self._packets = self._input.demux(self._in_stream)
        self._pending = None

    def _next_packet(self):
        for packet in self._packets:
            if packet.size:  # demux ends with an empty flush packet
                return packet
        return None

    def write_until(self, t: float) -> None:
        """Mux the audio up to time t in seconds."""
        while True:
            packet = self._pending if self._pending is not None else self._next_packet()
            self._pending = None
            if packet is None:
                return
            if packet.pts is not None and float(packet.pts * packet.time_base) > t:
                self._pending = packet
                return
            if self._copy:
                packet.stream = self._out_stream
                self._output.mux(packet)
            else:
                for frame in packet.decode():
                    frame.pts = None  # the encoder's own clock; it resamples and re-chunks for AAC
                    self._output.mux(self._out_stream.encode(frame))

    def finish(self, end: float) -> None:
        """Mux the audio up to `end` (the end of the last video frame) and close; the rest is dropped."""
        try:
            self.write_until(end)
            if not self._copy:
                self._output.mux(self._out_stream.encode(None))
        finally:
            self._input.close()


class H264Writer:
    """Encode RGB frames to H.264 (yuv420p, libx264) in an .mp4/.mov/.mkv, audio passed through.

    H.264 in yuv420p needs even sizes: an odd last row or column is dropped.
    `name` is what errors call the file (the final name, when `path` is a
    temporary one).
    """

    def __init__(self, path: str | Path, width: int, height: int, fps: Fraction, *,
                 audio_from: Path | None = None, crf: int = 18, preset: str = "veryfast", name: str | None = None):
        av = self._av = require_av()
        self.name = name or str(path)
        self.width, self.height = width - width % 2, height - height % 2
        if self.width < 2 or self.height < 2:
            raise InputError(f"frames of {width}×{height} are too small to encode")
        with self._reporting():
            # FFmpeg opens the file only with the first encoded packet, which
            # x264's look-ahead delays; fail now, not after the whole video.
            with open(path, "ab"):
                pass
            self._container = av.open(str(path), "w")
        try:
            with self._reporting():
                self._stream = self._container.add_stream("libx264", rate=fps)
                self._stream.width, self._stream.height = self.width, self.height
                self._stream.pix_fmt = "yuv420p"
                self._stream.time_base = TIME_BASE
                self._stream.codec_context.time_base = TIME_BASE
                self._stream.options = {"crf": str(crf), "preset": preset}
                self._audio = _AudioPassThrough(av, audio_from, self._container) if audio_from else None
        except BaseException:
            self.abort()
            raise
        try:  # OpenCV (the face extra) converts faster than PyAV alone; without it, PyAV does
            self._cv2 = importlib.import_module("cv2")
        except ImportError:
            self._cv2 = None
        self._last_pts = -1
        self._frame_seconds = 1 / float(fps)
        self._end = 0.0  # where the video written so far ends, in seconds: the audio stops there too
        self.frames_written = 0

    @contextlib.contextmanager
    def _reporting(self):
        """FFmpeg and OS failures (disk full, audio that cannot be carried) as one line."""
        try:
            yield
        except (self._av.FFmpegError, OSError) as e:
            raise HidaError(f"{self.name}: writing the video failed ({_first_line(e)})") from None

    def _to_frame(self, image: np.ndarray):
        rgb = np.ascontiguousarray(image[: self.height, : self.width])
        if self._cv2 is not None:
            # OpenCV's RGB -> I420 (BT.601, limited range, as swscale's default) is SIMD and
            # threaded; PyAV's rgb24 frame plus swscale costs ~10x more per 1080p frame.
            return self._av.VideoFrame.from_ndarray(self._cv2.cvtColor(rgb, self._cv2.COLOR_RGB2YUV_I420),
                                                    format="yuv420p")
        return self._av.VideoFrame.from_ndarray(rgb, format="rgb24")

    def write(self, image: np.ndarray, t: float) -> None:
        frame = self._to_frame(image)
        # Strictly increasing pts: two input frames may round to one tick.
        pts = max(int(round(t / TIME_BASE)), self._last_pts + 1)
        frame.pts, frame.time_base = pts, TIME_BASE
        self._last_pts = pts
        self._end = t + self._frame_seconds
        with self._reporting():
            if self._audio is not None:
                self._audio.write_until(t)
            self._container.mux(self._stream.encode(frame))
        self.frames_written += 1

    def close(self) -> None:
        """Flush the encoder and audio and finalise the file."""
        with self._reporting():
            try:
                self._container.mux(self._stream.encode(None))
                if self._audio is not None:
                    self._audio.finish(self._end)
            finally:
                self._container.close()

    def abort(self) -> None:
        for closable in (self._container, getattr(self._audio, "_input", None)):
            try:
                if closable is not None:
                    closable.close()
            except Exception:  # the file is being discarded; its state no longer matters
                pass
