"""The threaded pipeline: order, batching across frames, back-pressure, errors, graceful stop.

The backend here is a plain tensor function: these tests are about the
plumbing, which does not care what the network computes.
"""
import threading
import time

import numpy as np
import pytest
import torch

from hida_rt.errors import InputError
from hida_rt.video.io import Frame
from hida_rt.video.pipeline import Pipeline, Work


class CountingMode:
    """Frame i has i % 3 inputs (0, 1 or 2 'faces') of 4×4 pixels filled with i."""

    def prepare(self, frame):
        k = frame.index % 3
        photos = [torch.full((1, 3, 4, 4), float(frame.index)) for _ in range(k)]
        return Work(frame, photos, [torch.zeros(1, 1, 4, 4)] * k, context=k)

    def composite(self, work):
        assert len(work.sketches) == work.context
        return np.array([work.frame.index] + [int(s[0, 0]) for s in work.sketches])


def frames(n, on_yield=None):
    for i in range(n):
        if on_yield:
            on_yield(i)
        yield Frame(i, np.zeros((4, 4, 3), np.uint8), i / 25)


def identity_backend(photo, depth):
    return photo[:, :1] / 127.5 - 1  # grey level i comes back as i


def run(n=30, batch_size=4, backend=identity_backend, source=None, write=None, **kw):
    written, sizes = [], []

    def backend_spy(photo, depth):
        sizes.append(len(photo))
        return backend(photo, depth)

    def default_write(image, t):
        written.append((image, t))

    p = Pipeline(source if source is not None else frames(n), CountingMode(), backend_spy, write or default_write,
                 batch_size=batch_size, **kw)
    return p.run(), written, sizes


def test_frames_come_out_in_order_with_their_own_sketches():
    result, written, sizes = run(30, batch_size=4)
    assert [w[0][0] for w in written] == list(range(30))
    for image, t in written:
        i = image[0]
        assert t == pytest.approx(i / 25)
        assert list(image[1:]) == [i] * (i % 3)  # each frame got back the sketches of its own inputs
    assert result.frames == 30 and result.frames_with_input == 20
    assert max(sizes) <= 4 and sum(sizes) == 30  # 0+1+2 inputs per 3 frames
    assert result.batches == len(sizes)


def test_batches_fill_up_when_the_backend_is_the_bottleneck():
    def slow(photo, depth):
        time.sleep(0.02)
        return identity_backend(photo, depth)

    _, _, sizes = run(60, batch_size=4, backend=slow)
    # Frames queue up while it computes and are taken together; with 0, 1, 2
    # inputs per frame and no frame split across calls, 3 per call is the most
    # there is to have once running (one frame at a time would average 1.5).
    assert np.median(sizes) == 3 and np.mean(sizes) > 2.5 and max(sizes) <= 4


def test_a_frame_with_more_inputs_than_a_batch_is_split():
    result, written, sizes = run(9, batch_size=1)
    assert sizes == [1] * 9 and [list(w[0][1:]) for w in written][5] == [5, 5]


def test_back_pressure_keeps_decoding_close_to_the_output():
    decoded, ahead = [0], []

    def slow(photo, depth):
        time.sleep(0.01)
        return identity_backend(photo, depth)

    def on_yield(i):
        decoded[0] = i + 1

    written = []

    def write(image, t):
        written.append(image)
        ahead.append(decoded[0] - len(written))

    run(120, batch_size=2, backend=slow, source=frames(120, on_yield), write=write)
    assert len(written) == 120
    assert max(ahead) <= 20  # three queues of 4 plus the frames the stages hold, not the whole video


def test_a_decode_error_stops_everything_and_is_raised():
    def broken(n):
        yield from frames(n)
        raise InputError("clip.mp4: corrupt or truncated video after frame 5")

    before = threading.active_count()
    with pytest.raises(InputError, match="truncated"):
        run(source=broken(5))
    time.sleep(0.3)
    assert threading.active_count() <= before


def test_a_backend_error_is_raised_in_the_caller():
    def failing(photo, depth):
        raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError, match="out of memory"):
        run(10, backend=failing)


def test_first_ctrl_c_stops_a_live_source_and_keeps_what_was_captured():
    stop = threading.Event()

    def live():
        i = 0
        while not stop.is_set():
            yield Frame(i, np.zeros((4, 4, 3), np.uint8), i / 25)
            i += 1
            time.sleep(0.002)

    written = []

    def write(image, t):
        written.append(image)
        if len(written) == 10:
            raise KeyboardInterrupt

    result, _, _ = run(source=live(), write=write, graceful_stop=stop.set)
    assert result.frames >= 9 and [w[0] for w in written] == list(range(len(written)))


def test_ctrl_c_aborts_a_file():
    def write(image, t):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(10, write=write)


class LocatingMode(CountingMode):
    """A mode with a sequential part: locate() must see every frame once, in order, in one thread;
    prepare() (given what locate found) runs on the workers, each frame taking a different time."""

    def __init__(self):
        self.located, self.locate_threads, self.prepare_threads = [], set(), set()

    def locate(self, frame):
        self.located.append(frame.index)
        self.locate_threads.add(threading.get_ident())
        return frame.index * 10

    def prepare(self, frame, located=None):
        assert located == frame.index * 10
        self.prepare_threads.add(threading.get_ident())
        time.sleep(0.001 * ((frame.index * 7) % 5))  # later frames often finish first
        return super().prepare(frame)


@pytest.mark.parametrize("workers", [1, 3])
def test_workers_prepare_out_of_order_and_frames_come_back_in_order(workers):
    mode = LocatingMode()
    written = []
    result = Pipeline(frames(40), mode, identity_backend, lambda image, t: written.append(image), batch_size=4,
                      workers=workers).run()
    assert result.frames == 40 and [w[0] for w in written] == list(range(40))
    for image in written:
        assert list(image[1:]) == [image[0]] * (image[0] % 3)  # each frame still has its own sketches
    assert mode.located == list(range(40)) and len(mode.locate_threads) == 1
    assert min(workers, 2) <= len(mode.prepare_threads) <= workers  # several at once, when there are several
    assert not mode.prepare_threads & mode.locate_threads


def test_a_prepare_error_on_a_worker_is_raised_in_the_caller():
    class Failing(CountingMode):
        def prepare(self, frame):
            if frame.index == 7:
                raise InputError("frame 7 is broken")
            return super().prepare(frame)

    with pytest.raises(InputError, match="frame 7"):
        Pipeline(frames(20), Failing(), identity_backend, lambda image, t: None, workers=2).run()


def test_batch_of_matches_torch_cat():
    from hida_rt.video.pipeline import batch_of, sketches_to_uint8

    parts = [torch.rand(1, 3, 8, 8) for _ in range(3)]
    assert torch.equal(batch_of(parts), torch.cat(parts)) and batch_of(parts[:1]) is parts[0]
    y = torch.tensor([[[[-1.0, -0.5, 0.0, 0.999, 1.0, 3.0]]]])
    assert sketches_to_uint8(y).tolist() == [[[0, 64, 128, 255, 255, 255]]]  # clamped, rounded half to even
