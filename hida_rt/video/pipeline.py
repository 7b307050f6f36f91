"""The threaded video pipeline: decode -> locate -> prepare (workers) -> backend (batched) -> composite + encode.

Each stage runs in its own thread and hands frames on through a bounded
queue, so a slow stage (the backend, on a CPU) holds the others back instead
of letting decoded frames pile up in memory (back-pressure), and the fast
stages run while the backend computes. The front end is split in two: the
sequential part (a mode's locate(): face tracking, which needs the frames
in order) runs in one thread, and the rest (prepare(): cutting the aligned
faces, rendering their depth maps, the network inputs) on a pool of
`workers` threads, whose results are taken back in frame order. The backend
stage takes whatever frames are ready, up to `batch_size` network inputs,
so a file fills whole batches while a live webcam is never kept waiting for
one. Frames stay in order throughout.
"""
from __future__ import annotations

import queue
import threading
import time
from collections import defaultdict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Protocol

import numpy as np
import torch

from ..images import sketches_to_uint8
from .io import Frame, available_cores

STAGES = ("decode", "front end", "backend", "composite", "encode")
_END = object()  # sentinel: no more frames from upstream
_UNSET = object()


def default_workers() -> int:
    """Prepare workers for this machine: one beside the tracker on 2-4 cores, up to 4 on many."""
    return max(1, min(4, (available_cores() - 1) // 2))


@dataclass
class Work:
    """One frame on its way through: its backend inputs, then their sketches."""

    frame: Frame
    photos: list[torch.Tensor]  # 1×3×H×W each, [-1, 1]
    depths: list[torch.Tensor]  # 1×1×H×W each, [0, 1]
    context: Any = None  # what the mode needs to composite (e.g. the faces)
    sketches: list[np.ndarray] = field(default_factory=list)  # H×W uint8 each


class Mode(Protocol):
    """What the pipeline sketches: faces, or the whole frame.

    A mode may also have locate(frame) -> located, the part of preparing
    that must see the frames one at a time and in order (tracking); the
    pipeline then calls prepare(frame, located) on its workers. Without it,
    prepare(frame) runs on the workers alone.
    """

    def prepare(self, frame: Frame) -> Work: ...

    def composite(self, work: Work) -> np.ndarray: ...


class StageClock:
    """Busy time per stage (time spent working, not waiting on a queue), summed over its threads."""

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)
        self._lock = threading.Lock()

    def add(self, stage: str, seconds: float) -> None:
        with self._lock:
            self.seconds[stage] += seconds

    def per_frame_ms(self, frames: int) -> dict[str, float]:
        return {s: 1000 * self.seconds[s] / max(frames, 1) for s in STAGES}


@dataclass
class Result:
    frames: int
    frames_with_input: int  # frames that had something to sketch (a face, or every frame in whole-frame mode)
    batches: int
    wall_seconds: float
    stage_ms: dict[str, float]  # busy milliseconds per frame, by stage

    @property
    def fps(self) -> float:
        return self.frames / self.wall_seconds if self.wall_seconds > 0 else 0.0


class _Stopped(Exception):
    """Raised inside a stage when another stage failed or the run was aborted."""




def batch_of(tensors: list[torch.Tensor]) -> torch.Tensor:
    """torch.cat of CPU tensors, done by NumPy: torch's cat of a few small tensors runs on its
    OpenMP pool, whose threads then spin for a while, costing a 2-core machine ~5 ms of CPU per
    call that the other stages need. Tensors elsewhere (a GPU) go to torch.cat."""
    if len(tensors) == 1:
        return tensors[0]
    if all(t.device.type == "cpu" and not t.requires_grad for t in tensors):
        return torch.from_numpy(np.concatenate([t.numpy() for t in tensors]))
    return torch.cat(tensors)


class Pipeline:
    def __init__(self, frames: Iterable[Frame], mode: Mode, run_backend: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                 write: Callable[[np.ndarray, float], None], *, batch_size: int = 4,
                 on_frame: Callable[[Work], None] | None = None,
                 graceful_stop: Callable[[], None] | None = None,
                 workers: int | None = None):
        self._frames = frames
        self._mode = mode
        self._locate = getattr(mode, "locate", None)
        self._run_backend = run_backend  # (photo N×3×H×W, depth N×1×H×W) -> sketch N×1×H×W, style bound in
        self._write = write
        self._batch_size = batch_size
        self._workers = max(1, workers if workers is not None else default_workers())
        self._on_frame = on_frame
        # Called on the first Ctrl-C, if given: a live source stops and the
        # frames already in flight are still written (a second Ctrl-C aborts).
        self._graceful_stop = graceful_stop
        self._stop = threading.Event()
        self._errors: list[BaseException] = []
        self.clock = StageClock()
        self.batches = 0
        depth = max(2, 2 * batch_size)  # room for a full batch waiting while the previous one computes
        self._decoded: queue.Queue = queue.Queue(depth)
        self._prepared: queue.Queue = queue.Queue(max(depth, self._workers))  # futures, in frame order
        self._sketched: queue.Queue = queue.Queue(depth)

    # -- queue plumbing that gives up when the run is stopped -----------------
    def _put(self, q: queue.Queue, item) -> None:
        while True:
            if self._stop.is_set():
                raise _Stopped
            try:
                q.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _get(self, q: queue.Queue):
        while True:
            if self._stop.is_set():
                raise _Stopped
            try:
                return q.get(timeout=0.1)
            except queue.Empty:
                continue

    def _stage(self, name: str, body: Callable[[], None], out: queue.Queue) -> threading.Thread:
        def run():
            try:
                body()
            except _Stopped:
                return
            except BaseException as e:  # handed to the main thread, which re-raises it
                self._errors.append(e)
                self._stop.set()
                return
            try:
                self._put(out, _END)
            except _Stopped:
                pass

        thread = threading.Thread(target=run, name=f"hida-video-{name}", daemon=True)
        thread.start()
        return thread

    # -- the stages -----------------------------------------------------------
    def _decode(self) -> None:
        it: Iterator[Frame] = iter(self._frames)
        while True:
            t = time.perf_counter()
            frame = next(it, None)
            self.clock.add("decode", time.perf_counter() - t)
            if frame is None:
                return
            self._put(self._decoded, frame)

    def _prepare_one(self, frame: Frame, located) -> Work:
        t = time.perf_counter()
        work = self._mode.prepare(frame) if located is _UNSET else self._mode.prepare(frame, located)
        self.clock.add("front end", time.perf_counter() - t)
        return work

    def _front_end(self, pool: ThreadPoolExecutor) -> None:
        while (frame := self._get(self._decoded)) is not _END:
            located = _UNSET
            if self._locate is not None:
                t = time.perf_counter()
                located = self._locate(frame)
                self.clock.add("front end", time.perf_counter() - t)
            # The queue holds the futures in submission (= frame) order: that is the reassembly.
            self._put(self._prepared, pool.submit(self._prepare_one, frame, located))

    def _infer(self) -> None:
        held = None  # a frame taken from the queue that did not fit in the last batch
        while True:
            first = held if held is not None else self._work(self._get(self._prepared))
            held = None
            if first is _END:
                return
            batch, inputs = [first], len(first.photos)
            while inputs < self._batch_size:  # take what is ready, never wait for more
                try:
                    nxt = self._prepared.queue[0] if self._prepared.qsize() else None
                except IndexError:
                    nxt = None
                if nxt is None or (isinstance(nxt, Future) and not nxt.done()):
                    break
                nxt = self._work(self._prepared.get_nowait())
                if nxt is _END or inputs + len(nxt.photos) > self._batch_size:
                    held = nxt  # a frame's inputs stay in one call where they fit
                    break
                batch.append(nxt)
                inputs += len(nxt.photos)
            t = time.perf_counter()
            self._sketch(batch)
            self.clock.add("backend", time.perf_counter() - t)
            for work in batch:
                self._put(self._sketched, work)

    @staticmethod
    def _work(item):
        return item.result() if isinstance(item, Future) else item

    def _sketch(self, batch: list[Work]) -> None:
        photos = [p for w in batch for p in w.photos]
        depths = [d for w in batch for d in w.depths]
        sketches: list[np.ndarray] = []
        for start in range(0, len(photos), self._batch_size):
            out = self._run_backend(batch_of(photos[start:start + self._batch_size]),
                                    batch_of(depths[start:start + self._batch_size]))
            sketches.extend(sketches_to_uint8(out))
            self.batches += 1
        for work in batch:
            work.sketches, sketches = sketches[:len(work.photos)], sketches[len(work.photos):]

    # -- the main thread: composite, encode, report ---------------------------
    def run(self) -> Result:
        start = time.perf_counter()
        pool = ThreadPoolExecutor(self._workers, thread_name_prefix="hida-video-prepare")
        threads = [
            self._stage("decode", self._decode, self._decoded),
            self._stage("front-end", lambda: self._front_end(pool), self._prepared),
            self._stage("backend", self._infer, self._sketched),
        ]
        frames = with_input = 0
        interrupted = False
        try:
            while True:
                try:
                    work = self._get(self._sketched)
                    if work is _END:
                        break
                    t = time.perf_counter()
                    image = self._mode.composite(work)
                    t2 = time.perf_counter()
                    self._write(image, work.frame.time)
                    self.clock.add("composite", t2 - t)
                    self.clock.add("encode", time.perf_counter() - t2)
                    frames += 1
                    with_input += bool(work.photos)
                    if self._on_frame is not None:
                        self._on_frame(work)
                except _Stopped:
                    break
                except KeyboardInterrupt:
                    if self._graceful_stop is None or interrupted:
                        raise
                    interrupted = True
                    self._graceful_stop()
        finally:
            self._stop.set()
            for thread in threads:
                thread.join(timeout=5)
            pool.shutdown(wait=True, cancel_futures=True)
        if self._errors:
            raise self._errors[0]
        wall = time.perf_counter() - start
        return Result(frames, with_input, self.batches, wall, self.clock.per_frame_ms(frames))
