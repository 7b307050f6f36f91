"""DynamicBatcher on its own: grouping, the wait bound, the queue bound, shapes, errors, draining."""
from __future__ import annotations

import asyncio
import threading
import time

import pytest

from hida_rt.serve.batcher import DynamicBatcher
from hida_rt.serve.errors import Unavailable


class Item:
    def __init__(self, value, shape=(3, 256, 256)):
        self.value, self.shape = value, shape


class Recorder:
    """run_batch for the tests: squares the values, records each call, optionally slow."""

    def __init__(self, seconds=0.0, fail_on=None):
        self.calls: list[list[int]] = []
        self.seconds, self.fail_on = seconds, fail_on
        self.threads = set()

    def __call__(self, items):
        self.threads.add(threading.get_ident())
        self.calls.append([i.value for i in items])
        time.sleep(self.seconds)
        if self.fail_on is not None and self.fail_on in self.calls[-1]:
            raise ValueError("bad input")
        return [i.value ** 2 for i in items]


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


def test_concurrent_submits_share_calls_up_to_max_batch():
    rec = Recorder(seconds=0.05)
    sizes = []

    async def main():
        b = DynamicBatcher(rec, max_batch=4, max_wait_s=0.05, max_queue=64, on_batch=lambda n, s: sizes.append(n))
        await b.start()
        out = await asyncio.gather(*(b.submit(Item(i)) for i in range(10)))
        await b.stop()
        return out

    assert run(main()) == [i * i for i in range(10)]
    assert [len(c) for c in rec.calls] == [4, 4, 2] and sizes == [4, 4, 2]
    assert sorted(v for c in rec.calls for v in c) == list(range(10))
    assert len(rec.threads) == 1  # one backend thread, one call at a time


def test_a_lone_request_waits_at_most_max_wait():
    rec = Recorder()

    async def main():
        b = DynamicBatcher(rec, max_batch=8, max_wait_s=0.2, max_queue=8)
        await b.start()
        t0 = time.perf_counter()
        await b.submit(Item(3))
        waited = time.perf_counter() - t0
        await b.stop()
        return waited

    waited = run(main())
    assert 0.15 <= waited < 2.0 and rec.calls == [[3]]


def test_a_full_queue_answers_unavailable_with_retry_after():
    rec = Recorder(seconds=0.2)

    async def main():
        b = DynamicBatcher(rec, max_batch=1, max_wait_s=0, max_queue=2)
        await b.start()
        tasks = [asyncio.create_task(b.submit(Item(i))) for i in range(6)]
        done = await asyncio.gather(*tasks, return_exceptions=True)
        await b.stop()
        return done

    done = run(main())
    refused = [d for d in done if isinstance(d, Unavailable)]
    assert len(refused) >= 3 and all(int(e.headers["Retry-After"]) >= 1 for e in refused)
    assert [d for d in done if not isinstance(d, Exception)] == [i * i for i, d in enumerate(done) if not isinstance(d, Exception)]


def test_inputs_of_different_shapes_never_share_a_call():
    rec = Recorder(seconds=0.05)

    async def main():
        b = DynamicBatcher(rec, max_batch=8, max_wait_s=0.05, max_queue=64)
        await b.start()
        items = [Item(i, (3, 256, 256) if i % 2 else (3, 512, 512)) for i in range(6)]
        await asyncio.gather(*(b.submit(i) for i in items))
        await b.stop()

    run(main())
    assert sorted(sorted(c) for c in rec.calls) == [[0, 2, 4], [1, 3, 5]]


def test_a_failing_call_fails_its_requests_only_and_the_batcher_goes_on():
    rec = Recorder(fail_on=1)

    async def main():
        b = DynamicBatcher(rec, max_batch=2, max_wait_s=0.05, max_queue=8)
        await b.start()
        first = await asyncio.gather(b.submit(Item(0)), b.submit(Item(1)), return_exceptions=True)
        later = await b.submit(Item(5))
        await b.stop()
        return first, later

    first, later = run(main())
    assert all(isinstance(e, ValueError) for e in first) and later == 25


def test_stop_finishes_what_was_submitted_and_refuses_more():
    rec = Recorder(seconds=0.05)

    async def main():
        b = DynamicBatcher(rec, max_batch=2, max_wait_s=0.01, max_queue=8)
        await b.start()
        tasks = [asyncio.create_task(b.submit(Item(i))) for i in range(5)]
        await asyncio.sleep(0)  # all five queued
        await b.stop()
        with pytest.raises(Unavailable):
            await b.submit(Item(9))
        return [t.result() for t in tasks]

    assert run(main()) == [0, 1, 4, 9, 16]


def test_a_cancelled_request_is_not_computed():
    rec = Recorder(seconds=0.1)

    async def main():
        b = DynamicBatcher(rec, max_batch=1, max_wait_s=0, max_queue=8)
        await b.start()
        busy = asyncio.create_task(b.submit(Item(1)))
        await asyncio.sleep(0.02)  # item 1 is in the backend
        gone = asyncio.create_task(b.submit(Item(2)))
        await asyncio.sleep(0.01)
        gone.cancel()
        last = await b.submit(Item(3))
        await b.stop()
        return await busy, last

    assert run(main()) == (1, 9)
    assert rec.calls == [[1], [3]]
