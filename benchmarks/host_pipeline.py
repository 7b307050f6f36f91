"""A benchmark worker: times hida_rt's video host path with the network replaced by a pass-through.

    python benchmarks/host_pipeline.py      (then one JSON command per line on stdin)

The pass-through (passthrough_network below) is a benchmark instrument, not
a backend: it hands each photo's first channel back as its "sketch", so what
is timed is everything around the network (decode -> face front end ->
composite -> H.264 encode) with an infinitely fast one. The worker imports
whichever hida_rt comes first on its path, so bench_face_video.py runs one
on this checkout and one on a pristine copy of an older commit, side by side,
and sends both the same commands in turn.

Commands (JSON objects, one per line; each answers one JSON line):
  {"cmd": "pipeline", "clip": PATH, "preset": P|null, "max_faces": N, "workers": N|null}
      one run of the whole pipeline over the clip: fps, wall, busy ms per stage
  {"cmd": "front_end", "clip": PATH}     tracking: ms per frame of the front end alone (one thread)
  {"cmd": "still", "image": PATH, "max_faces": N}   ms to search one still photo, and the faces found
  {"cmd": "stability", "clip": PATH}     mean frame-to-frame motion of the smoothed landmarks
"""
from __future__ import annotations

import inspect
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def passthrough_network(photo, depth):
    """Benchmark instrument: a 'sketch' for each input at no cost (its first channel, already in [-1, 1])."""
    return photo[:, :1]


def _face_mode(max_faces: int):
    from hida_rt.face import Smoothing
    from hida_rt.video.modes import FaceMode

    extra = {"draw_in_place": True} if "draw_in_place" in inspect.signature(FaceMode).parameters else {}
    return FaceMode(max_faces, Smoothing(), "pass", **extra)  # the video CLI's mode and defaults


def _default_preset() -> str:
    import hida_rt.video.io as vio

    # This checkout's CLI default; an older one had a fixed "veryfast".
    return vio.default_preset() if hasattr(vio, "default_preset") else "veryfast"


class Worker:
    def __init__(self):
        self._modes: dict[int, object] = {}
        self._out = Path(tempfile.mkdtemp(prefix="hida-bench-")) / "out.mp4"

    def mode(self, max_faces: int):
        if max_faces not in self._modes:
            self._modes[max_faces] = _face_mode(max_faces)
        return self._modes[max_faces]

    def pipeline(self, clip: str, preset: str | None = None, max_faces: int = 1, workers: int | None = None,
                 batch_size: int = 4) -> dict:
        from hida_rt.video.io import FileReader, H264Writer
        from hida_rt.video.pipeline import Pipeline

        mode = self.mode(max_faces)
        mode._front_end.reset()  # each run tracks the clip from its first frame, detection included
        reader = FileReader(clip)
        writer = H264Writer(self._out, reader.width, reader.height, reader.fps, preset=preset or _default_preset(),
                            audio_from=reader.path if reader.has_audio else None)
        kwargs = {"workers": workers} if workers and "workers" in inspect.signature(Pipeline).parameters else {}
        result = Pipeline(reader.frames(), mode, passthrough_network, writer.write, batch_size=batch_size,
                          **kwargs).run()
        writer.close()
        reader.close()
        return {"fps": result.fps, "wall": result.wall_seconds, "frames": result.frames,
                "with_input": result.frames_with_input, "stage_ms": result.stage_ms,
                "preset": preset or _default_preset()}

    def front_end(self, clip: str) -> dict:
        from hida_rt import images
        from hida_rt.video.io import FileReader

        reader = FileReader(clip)
        frames = list(reader.frames())
        reader.close()
        fe = self.mode(1)._front_end
        fe.reset()
        fe.process(frames[0].image, frames[0].time)  # the first frame searches; the rest track
        t = time.perf_counter()
        found = 0
        for f in frames[1:]:
            faces = fe.process(f.image, f.time)
            for face in faces:
                images.photo_to_tensor(face.photo), images.depth_to_tensor(face.depth)
            found += len(faces)
        return {"ms_per_frame": 1e3 * (time.perf_counter() - t) / (len(frames) - 1), "faces": found,
                "frames": len(frames) - 1}

    def still(self, image: str, max_faces: int = 8) -> dict:
        from PIL import Image

        from hida_rt.face import FaceFrontEnd

        rgb = np.array(Image.open(image).convert("RGB"))
        with FaceFrontEnd(max_faces=max_faces) as fe:
            fe.process(rgb)  # graphs warmed up
            t = time.perf_counter()
            faces = fe.process(rgb)
            ms = 1e3 * (time.perf_counter() - t)
        centres = [[float(v) for v in (f.landmarks[10, :2] + f.landmarks[152, :2]) / 2] for f in faces]
        return {"ms": ms, "faces": len(faces), "centres": centres}

    def stability(self, clip: str) -> dict:
        from hida_rt.face import FaceFrontEnd, Smoothing
        from hida_rt.video.io import FileReader

        reader = FileReader(clip)
        frames = list(reader.frames())
        reader.close()
        with FaceFrontEnd(smoothing=Smoothing()) as fe:
            marks = [fe.process(f.image, f.time) for f in frames]
        if not all(len(m) == 1 for m in marks):
            return {"error": f"the face was found in {sum(len(m) == 1 for m in marks)} of {len(marks)} frames"}
        pts = np.stack([m[0].landmarks[:468, :2] for m in marks])
        steps = np.linalg.norm(np.diff(pts, axis=0), axis=2)  # frames-1 × 468, pixels
        settled = steps[10:]  # after the filter has settled on the face
        return {"mean_px": float(settled.mean()), "p95_px": float(np.percentile(settled, 95)),
                "frames": len(frames)}


def main() -> int:
    worker = Worker()
    import hida_rt

    print(json.dumps({"ready": str(Path(hida_rt.__file__).parent)}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        cmd = request.pop("cmd")
        try:
            answer = getattr(worker, cmd)(**request)
        except Exception as e:  # reported to the benchmark, which fails the case with it
            answer = {"error": f"{type(e).__name__}: {e}"}
        print(json.dumps(answer), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
