"""The per-image work of a batch job, shared by the in-process run and the Ray actors.

Task (one photo to sketch), Outcome (written, or one line of why not),
Settings (what every worker needs to build its backend and write) and
Sketcher (one backend: photo bytes in, sketch files out), plus `plan`, which
turns INPUT/OUTPUT/--depth into the tasks still to do. The command line
(`__main__`) and the Ray job (`ray_job`) both build on this module and on
nothing of each other's.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .. import images
from ..errors import HidaError, InputError, first_line
from . import files as bf
# CPUs a Ray run leaves to Ray Data's read tasks (which take READ_CPUS each) instead of giving them to actors.
RESERVED_CPUS = 0.5
FACE_SIZE = 256  # without --depth the sketch is of the aligned face, at the template's 256x256


@dataclass(frozen=True)
class Task:
    """One photo to sketch: filesystem paths, and the name the summary shows."""

    photo: str
    depth: str | None
    output: str
    name: str


@dataclass(frozen=True)
class Outcome:
    name: str
    error: str | None = None   # one line; None when the sketch was written


@dataclass(frozen=True)
class Settings:
    """What every worker (this process, or each Ray actor) needs to build its backend and write."""

    weights: str
    backend: str
    device: str | None
    onnx: str | None
    engine: str | None
    style: tuple[float, float, float]
    size: int
    in_fs: object
    depth_fs: object | None
    out_fs: object
    threads: int | None = None   # intra-op threads of the backend (Ray actors: their CPU share)
    dtype: str | None = None     # eager's dtype when the triton self-check failed on a GPU (backends.choose)
    recheck: bool = False        # GPU actors decide their backend themselves: --recheck probes there


class Sketcher:
    """One backend; photo (+ depth) bytes in, sketch files out. The per-image work of both paths."""

    def __init__(self, settings: Settings, progress: bool = False):
        from ..backends import create_backend
        self.settings = settings
        if settings.threads:
            torch.set_num_threads(settings.threads)
        self.backend = create_backend(settings.backend, settings.weights, device=settings.device,
                                      onnx=settings.onnx, engine=settings.engine, threads=settings.threads,
                                      progress=progress, recheck=settings.recheck,
                                      **({"dtype": settings.dtype} if settings.dtype else {}))
        self.style = torch.tensor(settings.style, dtype=torch.float32)

    def prepare(self, task: Task, photo_bytes: bytes | None) -> tuple[torch.Tensor, torch.Tensor, tuple[int, int]]:
        """(photo tensor, depth tensor, output (width, height)) of one task; InputError if it cannot be used."""
        s = self.settings
        if photo_bytes is None:
            photo_bytes = bf.read_bytes(s.in_fs, task.photo, task.name)
        photo = images.decode_image(photo_bytes, "RGB", task.name)
        size = (s.size, s.size)
        if task.depth is not None:
            depth = images.decode_image(bf.read_bytes(s.depth_fs, task.depth, task.depth), "L", task.depth)
            return images.pair_to_tensors(photo, depth, size, f"photo {task.name}", task.depth)
        from ..face import (
            prepare_faces,  # the face extra: MissingDependency says how to install it
        )
        face = prepare_faces(np.asarray(photo), 1, source=task.name)[0]
        return images.photo_to_tensor(face.photo, size), images.depth_to_tensor(face.depth, size), (FACE_SIZE,
                                                                                                     FACE_SIZE)

    def sketch(self, tasks: Sequence[Task], photo_bytes: Sequence[bytes | None] | None = None) -> list[Outcome]:
        """Sketch and write a batch; every task gets an Outcome, failures as one line each."""
        outcomes: dict[int, Outcome] = {}
        ready = []
        for i, task in enumerate(tasks):
            try:
                ready.append((i, *self.prepare(task, photo_bytes[i] if photo_bytes is not None else None)))
            except Exception as e:  # noqa: BLE001 - a bad file is a line in the summary, whatever broke
                outcomes[i] = failure(task, e)
        if ready:
            try:
                with torch.no_grad():
                    out = self.backend.run(torch.cat([r[1] for r in ready]), torch.cat([r[2] for r in ready]),
                                           self.style.expand(len(ready), 3).contiguous())
            except Exception as e:  # noqa: BLE001
                for i, *_ in ready:
                    outcomes[i] = failure(tasks[i], e)
            else:
                for (i, _, _, size), sketch in zip(ready, out):
                    try:
                        bf.write_image(self.settings.out_fs, tasks[i].output, images.sketch_to_image(sketch, size))
                        outcomes[i] = Outcome(tasks[i].name)
                    except Exception as e:  # noqa: BLE001
                        outcomes[i] = failure(tasks[i], e)
        return [outcomes[i] for i in range(len(tasks))]


def failure(task: Task, e: BaseException) -> Outcome:
    reason = first_line(e, 200)
    if not isinstance(e, HidaError):
        reason = f"{type(e).__name__}: {reason}"
    if reason.startswith(task.name + ": "):
        reason = reason[len(task.name) + 2:]
    return Outcome(task.name, reason)


# ---------------------------------------------------------------- planning

@dataclass
class Plan:
    tasks: list[Task]            # to sketch now
    done: int                    # already complete (skipped)
    failed: list[Outcome]        # refused while planning (no depth map, clashing outputs)
    stale_temps: list[str]
    total: int                   # images found
    output: bf.Location
    source: bf.Location
    depth: bf.Location | None


def plan(input_text: str, output_text: str, depth_text: str | None) -> Plan:
    src = bf.parse_location(input_text, "INPUT")
    out = bf.parse_location(output_text, "OUTPUT")
    if out.pattern is not None:
        raise InputError(f"OUTPUT {output_text}: a glob; name the folder the sketches go to")
    depth = bf.parse_location(depth_text, "--depth") if depth_text is not None else None
    sources = bf.list_images(src, "INPUT", exclude=out)
    index = bf.DepthIndex(depth) if depth is not None else None
    done_rel, temps = bf.scan_outputs(out)
    tasks, failed, claimed, done = [], [], {}, 0
    for s in sources:
        rel = bf.output_rel(s)
        name = src.shown(s.path)
        if rel in claimed:
            failed.append(Outcome(name, f"its sketch {rel} is also {claimed[rel]}'s; rename one of them"))
            continue
        claimed[rel] = name
        if rel in done_rel:
            done += 1
            continue
        try:
            depth_path = index.find(s) if index is not None else None
        except InputError as e:
            failed.append(Outcome(name, str(e)))
            continue
        tasks.append(Task(s.path, depth_path, out.join(rel), name))
    return Plan(tasks, done, failed, temps, len(sources), out, src, depth)
