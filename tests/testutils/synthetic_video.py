"""Synthetic faces-in-the-wild frames and clips for the face/video tests and benchmarks.

The sample faces (samples/, public domain) are pasted into plain
frames at known places, so a test knows where the face is; clips are
written with PyAV (H.264, optional AAC tone) so the decoder sees a real file.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image

FACES = Path(__file__).resolve().parents[2] / "samples"
WALL = (90, 120, 90)  # plain green-grey: no face, nothing face-like


def sample_photo(name: str = "astronaut") -> np.ndarray:
    return np.array(Image.open(FACES / f"{name}_photo.png").convert("RGB"))


def sample_depth(name: str = "astronaut") -> np.ndarray:
    return np.array(Image.open(FACES / f"{name}_depth.png").convert("L"))


def background(h: int, w: int) -> np.ndarray:
    frame = np.empty((h, w, 3), np.uint8)
    frame[:] = WALL
    return frame


def place(frame: np.ndarray, photo: np.ndarray, side: float, cx: float, cy: float, degrees: float = 0.0) -> np.ndarray:
    """Draw a 256×256 photo into `frame` (in place), `side` px wide, centred at (cx, cy), rotated
    `degrees` counter-clockwise; return the 2×3 matrix used (photo -> frame)."""
    import cv2

    m = cv2.getRotationMatrix2D((128.0, 128.0), degrees, side / 256)
    m[:, 2] += [cx - 128, cy - 128]
    cv2.warpAffine(photo, m, (frame.shape[1], frame.shape[0]), dst=frame, flags=cv2.INTER_LINEAR,
                   borderMode=cv2.BORDER_TRANSPARENT)
    return m


def moving_face_frames(n: int, width: int, height: int, *, face_from: int = 0, face_until: int | None = None):
    """n frames of the astronaut drifting, turning and zooming a little; wall only outside [face_from, face_until)."""
    photo = sample_photo()
    face_until = n if face_until is None else face_until
    for i in range(n):
        frame = background(height, width)
        if face_from <= i < face_until:
            side = 0.6 * height * (1 + 0.1 * math.sin(i / 3))
            place(frame, photo, side, width / 2 + 0.08 * width * math.sin(i / 5), height / 2, 8 * math.sin(i / 4))
        yield frame


def write_clip(path: Path, frames, fps: int = 25, *, audio: str | None = "aac", video_codec: str = "libx264",
               pix_fmt: str = "yuv420p", options: dict | None = None) -> Path:
    """Encode RGB frames (and a 440 Hz tone as long as the video, if `audio`) with PyAV."""
    import av

    frames = list(frames)
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w", options=options or {}) as out:
        video = out.add_stream(video_codec, rate=fps)
        video.width, video.height, video.pix_fmt = w, h, pix_fmt
        sound = out.add_stream(audio, rate=44100) if audio else None
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            frame.pts = i
            out.mux(video.encode(frame))
        if sound is not None:
            samples = int(44100 * len(frames) / fps)
            tone = np.sin(2 * np.pi * 440 * np.arange(samples) / 44100)
            pcm = audio.startswith("pcm")
            for start in range(0, samples, 1024):
                chunk = tone[start:start + 1024][None]
                data = (chunk * 3000).astype(np.int16) if pcm else (chunk * 0.1).astype(np.float32)
                a = av.AudioFrame.from_ndarray(data, format="s16" if pcm else "fltp", layout="mono")
                a.sample_rate = 44100
                out.mux(sound.encode(a))
            out.mux(sound.encode(None))
        out.mux(video.encode(None))
    return path


def probe(path: Path) -> dict:
    """What a test checks of an output video: codec, size, frame count, audio, decoded frames."""
    import av

    with av.open(str(path)) as c:
        v = c.streams.video[0]
        info = {"codec": v.codec_context.name, "width": v.codec_context.width, "height": v.codec_context.height,
                "audio": [a.codec_context.name for a in c.streams.audio]}
        info["frames"] = [f.to_ndarray(format="rgb24") for f in c.decode(v)]
    return info
