"""WS /v1/stream against the real server: sketched frames with timings, latest frame wins, style mid-stream."""
from __future__ import annotations

import asyncio
import io
import json
import struct

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("mediapipe", reason="the live stream needs the face extra (MediaPipe 0.10.21)")
websockets = pytest.importorskip("websockets")
from websockets.asyncio.client import connect

WAIT_S = 60


def frame_message(frame_id: int, jpeg: bytes) -> bytes:
    return struct.pack(">I", frame_id) + jpeg


def parse_reply(data: bytes):
    frame_id, n = struct.unpack_from(">II", data)
    meta = json.loads(data[8:8 + n])
    image = np.asarray(Image.open(io.BytesIO(data[8 + n:])).convert("RGB"))
    assert meta["id"] == frame_id
    return meta, image


async def next_frame(ws):
    """The next reply: a sketched frame (a text message here is a failure)."""
    msg = await asyncio.wait_for(ws.recv(), WAIT_S)
    assert isinstance(msg, bytes), msg
    return parse_reply(msg)


def stream_url(server):
    return server.url.replace("http://", "ws://") + "/v1/stream"


def test_frames_come_back_sketched_and_the_latest_frame_wins(server, stream_jpegs):
    async def main():
        async with connect(stream_url(server), subprotocols=["hida.v1"], open_timeout=WAIT_S) as ws:
            assert ws.subprotocol == "hida.v1"
            hello = json.loads(await asyncio.wait_for(ws.recv(), WAIT_S))
            assert hello["backend"] == "eager" and hello["style"] == "s2"
            # One frame: sketched where the face is, the frame as it was elsewhere.
            rgb, jpeg = stream_jpegs[0]
            await ws.send(frame_message(1, jpeg))
            meta, out = await next_frame(ws)
            assert meta["faces"] == 1 and out.shape == rgb.shape
            assert set(meta["timings"]) >= {"decode", "face", "sketch", "composite", "encode", "server"}
            decoded = np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB")).astype(int)
            diff = np.abs(out.astype(int) - decoded).max(axis=2)
            assert diff[:, :30].mean() < 4  # the wall at the left: untouched (JPEG noise only)
            assert diff[80:160, 130:190].mean() > 20  # the middle of the face: the sketch
            face = out[80:160, 130:190].astype(int)
            assert np.abs(face[..., 0] - face[..., 1]).mean() < 4  # grey, a pencil sketch
            # A burst faster than the backend: stale frames are dropped, the newest is answered.
            for i, (_, j) in enumerate(stream_jpegs[1:], start=2):
                await ws.send(frame_message(i, j))
            last_id = len(stream_jpegs)
            replies = []
            while not replies or replies[-1]["id"] != last_id:
                replies.append((await next_frame(ws))[0])
            ids = [r["id"] for r in replies]
            assert ids == sorted(ids) and len(ids) < last_id - 1, ids
            assert replies[-1]["dropped"] >= last_id - 1 - len(ids) > 0
    asyncio.run(main())


def test_style_changes_mid_stream_and_bad_frames_do_not_end_it(server, stream_jpegs):
    async def main():
        async with connect(stream_url(server), open_timeout=WAIT_S) as ws:
            await asyncio.wait_for(ws.recv(), WAIT_S)  # hello
            _, jpeg = stream_jpegs[3]
            await ws.send(frame_message(1, jpeg))
            meta2, out2 = await next_frame(ws)
            await ws.send(json.dumps({"style": "1"}))
            assert json.loads(await asyncio.wait_for(ws.recv(), WAIT_S)) == {"style": "s1"}
            await ws.send(json.dumps({"style": "9"}))
            assert "style must be 1, 2 or 3" in json.loads(await asyncio.wait_for(ws.recv(), WAIT_S))["error"]
            await ws.send(frame_message(2, b"not a jpeg"))
            error = json.loads(await asyncio.wait_for(ws.recv(), WAIT_S))
            assert error["id"] == 2 and "frame: cannot read as an image" in error["error"]
            await ws.send(frame_message(3, jpeg))
            meta1, out1 = await next_frame(ws)
            assert (meta2["style"], meta1["style"]) == ("s2", "s1")
            assert np.abs(out1.astype(int) - out2.astype(int)).mean() > 1  # the other style draws differently
            # A message over --max-frame-mb (1 MiB) ends the connection (1009: message too big).
            await ws.send(frame_message(4, b"\xff" * (2 * 2**20)))
            with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), WAIT_S)
            assert closed.value.rcvd.code == 1009
    asyncio.run(main())


def test_a_page_from_another_origin_cannot_open_the_stream(server):
    async def main():
        async with connect(stream_url(server), origin="http://evil.example", open_timeout=WAIT_S):
            pass
    with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
        asyncio.run(main())
    assert refused.value.response.status_code == 403
