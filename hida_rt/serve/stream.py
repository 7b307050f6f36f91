"""WS /v1/stream: live frames in, sketched frames out, the latest frame winning.

Protocol (all integers big-endian):
  client -> server, binary: uint32 frame id, then one JPEG (or PNG/WebP) frame;
  client -> server, text:   {"style": "2"} or {"style": "0.5,0,0.5"}, applied from the next frame;
  server -> client, binary: uint32 frame id, uint32 n, n bytes of JSON (faces, timings in ms,
                            frames dropped so far, style), then the sketched frame as JPEG;
  server -> client, text:   JSON: {"hello": ...} on connect, {"style": ...} acks, {"error": ..., "id": ...}.
A stream that sends no frame for --stream-idle-timeout seconds is closed (code 1001, after an error message).

One receiver task keeps only the newest unprocessed frame; one worker
sketches whatever is newest when it is free. A frame that arrives while
another waits replaces it (counted as dropped), so a slow backend makes the
stream skip frames, never fall behind.
"""
from __future__ import annotations

import asyncio
import json
import logging
import struct
import time

from starlette.websockets import WebSocket, WebSocketDisconnect

from ..errors import HidaError, first_line
from ..styles import describe
from .core import parse_style
from .guard import WS_PROTOCOL

HEADER = struct.Struct(">I")
log = logging.getLogger("hida_rt.serve")


async def serve_stream(ws: WebSocket, state) -> None:
    await ws.accept(subprotocol=WS_PROTOCOL if WS_PROTOCOL in (ws.scope.get("subprotocols") or ()) else None)
    metrics, service = state.metrics, state.service
    send_lock = asyncio.Lock()

    async def send_json(obj) -> None:
        async with send_lock:
            await ws.send_text(json.dumps(obj))

    try:
        state.require_ready()
        session = await state.cpu_work(service.open_stream)
    except HidaError as e:
        await send_json({"error": first_line(e, 300)})
        await ws.close(code=1013 if getattr(e, "status", 0) == 503 else 1011)
        return
    style = parse_style(state.settings.default_style)
    latest: tuple[int, bytes, float] | None = None
    arrived = asyncio.Event()
    closed = False
    dropped = 0

    async def receive_frames() -> None:
        nonlocal latest, dropped, style, closed
        idle_s = state.settings.stream_idle_s
        last_frame = time.monotonic()
        try:
            while True:
                try:
                    # Answering pings, or sending style messages, is not using a stream: one that sends no
                    # frame for idle_s gives its slot back.
                    async with asyncio.timeout(max(0.0, last_frame + idle_s - time.monotonic())):
                        message = await ws.receive()
                except TimeoutError:
                    metrics.stream_frames.labels("idle_closed").inc()
                    await send_json({"error": f"no frame for {idle_s:g} s: the stream is closed"})
                    await ws.close(code=1001, reason="idle")
                    return
                if message["type"] == "websocket.disconnect":
                    return
                data, text = message.get("bytes"), message.get("text")
                if data is not None:
                    if len(data) <= HEADER.size:
                        await send_json({"error": "a frame is a 4-byte frame id followed by a JPEG image"})
                        continue
                    if latest is not None:
                        dropped += 1
                        metrics.stream_frames.labels("dropped").inc()
                    last_frame = time.monotonic()
                    latest = (HEADER.unpack_from(data)[0], data[HEADER.size:], last_frame)
                    arrived.set()
                elif text is not None:
                    try:
                        control = json.loads(text)
                        if not isinstance(control, dict) or "style" not in control:
                            raise ValueError('send {"style": "1" | "2" | "3" | "w1,w2,w3"}')
                        style = parse_style(str(control["style"]))
                        await send_json({"style": describe(style)})
                    except (ValueError, HidaError) as e:
                        await send_json({"error": first_line(e, 300)})
        except (WebSocketDisconnect, RuntimeError):
            return
        finally:
            closed = True
            arrived.set()

    async def sketch_frames() -> None:
        nonlocal latest
        while True:
            await arrived.wait()
            arrived.clear()
            if closed:
                return
            if latest is None:
                continue
            (frame_id, data, received), latest = latest, None
            frame_style = style
            try:
                plan = await state.cpu_work(session.prepare, data, frame_style, received)
                t0 = time.perf_counter()
                sketches = await asyncio.gather(*(state.batcher.submit(item) for item in plan.inputs))
                plan.timings["sketch"] = 1e3 * (time.perf_counter() - t0)
                jpeg = await state.cpu_work(session.finish, plan, sketches)
            except Exception as e:  # the frame fails, the stream goes on
                metrics.stream_frames.labels("error").inc()
                if not isinstance(e, HidaError):
                    log.exception("live frame failed")
                reply_error = {"error": first_line(e, 300) if isinstance(e, HidaError) else
                               f"internal error ({type(e).__name__}); the server log has the details", "id": frame_id}
                try:
                    await send_json(reply_error)
                except (WebSocketDisconnect, RuntimeError):
                    return
                continue
            server_s = time.monotonic() - received
            plan.timings["server"] = 1e3 * server_s
            meta = json.dumps({"id": frame_id, "faces": len(plan.inputs), "dropped": dropped,
                               "style": describe(frame_style),
                               "timings": {k: round(v, 1) for k, v in plan.timings.items()}}).encode()
            metrics.stream_frames.labels("sketched").inc()
            metrics.stream_seconds.observe(server_s)
            try:
                async with send_lock:
                    await ws.send_bytes(HEADER.pack(frame_id) + HEADER.pack(len(meta)) + meta + jpeg)
            except (WebSocketDisconnect, RuntimeError):
                return

    await send_json({"hello": "hida_rt live sketch", "backend": service.backend.name, "style": describe(style)})
    receiver = asyncio.create_task(receive_frames())
    worker = asyncio.create_task(sketch_frames())
    try:
        await receiver
    finally:
        # The worker finishes the frame it holds (its thread cannot be interrupted) before the session closes.
        closed = True
        arrived.set()
        await asyncio.gather(worker, return_exceptions=True)
        await state.cpu_work(session.close)
