"""Dynamic batching: concurrent requests' network inputs grouped into one backend call.

The app talks to any `Batcher` (submit one input, await its sketch). This
module's DynamicBatcher does it in process; under Ray Serve the same app gets
one built on `@serve.batch` instead, with the same run_batch underneath.
"""
from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from .errors import Unavailable


class Batcher(Protocol):
    """What the app needs of a batcher."""

    depth: int  # inputs waiting (not yet in a backend call)

    async def start(self) -> None: ...

    async def submit(self, item: Any) -> Any:
        """The result of run_batch for `item`; Unavailable (503) when full or stopping."""

    async def stop(self) -> None:
        """Stop taking inputs, finish those already taken."""


@dataclass
class _Pending:
    item: Any
    future: asyncio.Future
    arrived: float = field(default_factory=time.monotonic)


class DynamicBatcher:
    """Up to max_batch inputs of one shape per call of run_batch, waiting at most max_wait_s for company.

    The wait starts when a batch's first input arrives, so inputs that queued
    while the backend was busy go at once. run_batch runs in one worker thread,
    one call at a time (the backend has the machine to itself); the queue holds
    at most max_queue inputs, beyond which submit answers Unavailable rather
    than let memory grow. on_batch(size, seconds) is told of every call.
    """

    def __init__(self, run_batch: Callable[[Sequence[Any]], Sequence[Any]], *, max_batch: int = 8,
                 max_wait_s: float = 0.005, max_queue: int = 64,
                 shape_of: Callable[[Any], Any] = lambda item: getattr(item, "shape", None),
                 on_batch: Callable[[int, float], None] | None = None):
        self._run_batch = run_batch
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.max_queue = max_queue
        self._shape_of = shape_of
        self._on_batch = on_batch
        self._pending: collections.deque[_Pending] = collections.deque()
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._stopping = False
        self.batches = 0
        self.last_batch_s = 0.0  # for Retry-After estimates

    @property
    def depth(self) -> int:
        return len(self._pending)

    async def start(self) -> None:
        if self._task is None:
            self._wakeup = asyncio.Event()
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="hida-backend")
            self._task = asyncio.create_task(self._loop(), name="hida-batcher")

    async def submit(self, item: Any) -> Any:
        if self._task is None or self._stopping:
            raise Unavailable("the service is stopping" if self._stopping else "the batcher is not running")
        if len(self._pending) >= self.max_queue:
            raise Unavailable(f"overloaded: {len(self._pending)} inputs are waiting for the model; try again later",
                              retry_after=self.retry_after())
        pending = _Pending(item, asyncio.get_running_loop().create_future())
        self._pending.append(pending)
        self._wakeup.set()
        return await pending.future

    def retry_after(self) -> float:
        """Seconds until the inputs waiting now have likely gone through."""
        return (1 + len(self._pending) / self.max_batch) * max(self.last_batch_s, 0.05)

    async def stop(self) -> None:
        """Finish what was submitted, then end the worker."""
        self._stopping = True
        if self._task is not None:
            self._wakeup.set()
            await self._task
            self._task = None
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    # -- the worker --------------------------------------------------------------
    def _ready_count(self, shape) -> int:
        return sum(1 for p in self._pending if not p.future.done() and self._shape_of(p.item) == shape)

    def _take(self) -> list[_Pending]:
        """Up to max_batch live inputs of the first live input's shape, in arrival order."""
        while self._pending and self._pending[0].future.done():  # the caller went away: nothing to compute
            self._pending.popleft()
        if not self._pending:
            return []
        shape = self._shape_of(self._pending[0].item)
        batch, rest = [], collections.deque()
        while self._pending:
            p = self._pending.popleft()
            if p.future.done():
                continue
            if len(batch) < self.max_batch and self._shape_of(p.item) == shape:
                batch.append(p)
            else:
                rest.append(p)
        self._pending = rest
        return batch

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._pending:
                if self._stopping:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            first = self._pending[0]
            shape = self._shape_of(first.item)
            while not self._stopping and self._ready_count(shape) < self.max_batch:
                remaining = first.arrived + self.max_wait_s - time.monotonic()
                if remaining <= 0:
                    break
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), remaining)
                except asyncio.TimeoutError:
                    break
            batch = self._take()
            if not batch:
                continue
            t0 = time.perf_counter()
            try:
                results = await loop.run_in_executor(self._executor, self._run_batch, [p.item for p in batch])
                if len(results) != len(batch):
                    raise RuntimeError(f"run_batch returned {len(results)} results for {len(batch)} inputs")
            except Exception as e:  # every request of the batch gets the error; the worker goes on
                for p in batch:
                    if not p.future.done():
                        p.future.set_exception(e)
                continue
            finally:
                self.last_batch_s = time.perf_counter() - t0
                self.batches += 1
                if self._on_batch is not None:
                    self._on_batch(len(batch), self.last_batch_s)
            for p, r in zip(batch, results):
                if not p.future.done():
                    p.future.set_result(r)
