"""POST /v1/sketch, /healthz, /metrics end to end against a real server on 127.0.0.1."""
from __future__ import annotations

import asyncio
import io
import json

import httpx
import numpy as np
import pytest
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families


TIMEOUT = httpx.Timeout(60.0)


def sketch(server, files, style=None, **kw):
    params = {} if style is None else {"style": style}
    return httpx.post(f"{server.url}/v1/sketch", params=params, files=files, timeout=TIMEOUT, **kw)


def metrics(server) -> dict[str, float]:
    """Samples of /metrics as {'name{label=value,...}': value}."""
    r = httpx.get(f"{server.url}/metrics", timeout=TIMEOUT)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[s.name + "{" + ",".join(f"{k}={v}" for k, v in sorted(s.labels.items())) + "}"] = s.value
    return out


def assert_json_error(r, status):
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert list(body) == ["error"] and body["error"] and "\n" not in body["error"]
    assert "Traceback" not in r.text
    return body["error"]


def grey(png: bytes) -> np.ndarray:
    im = Image.open(io.BytesIO(png))
    assert im.mode == "L"
    return np.asarray(im).astype(int)


# -- health, metrics ------------------------------------------------------------------

def test_healthz_reports_the_loaded_model(server, spread_ckpt):
    from hida_rt.checkpoint import file_sha256

    body = httpx.get(f"{server.url}/healthz", timeout=TIMEOUT).json()
    assert body["backend"] == "eager" and body["size"] == 256 and body["status"] == "ok"
    assert body["weights_sha256"] == file_sha256(spread_ckpt)[:16]
    assert body["api_key_required"] is False


def test_metrics_name_the_backend_and_the_queue(server):
    m = metrics(server)
    assert m["hida_backend_info{backend=eager,size=256}"] == 1
    assert "hida_queue_depth{}" in m and "hida_http_in_flight_requests{}" in m
    assert any(k.startswith("hida_http_request_duration_seconds_bucket{") and "route=/healthz" in k for k in m)


def test_openapi_documents_the_sketch_route(server):
    spec = httpx.get(f"{server.url}/openapi.json", timeout=TIMEOUT).json()
    post = spec["paths"]["/v1/sketch"]["post"]
    assert "image/png" in post["responses"]["200"]["content"]
    assert {"400", "408", "413", "415", "422", "431", "503"} <= set(post["responses"])
    # depth is optional, and a file: the schema never offers null, which the route would refuse.
    form = spec["components"]["schemas"][post["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"]
                                         .rsplit("/", 1)[1]]
    assert form["required"] == ["photo"]
    assert form["properties"]["depth"].get("type") == "string" and "anyOf" not in form["properties"]["depth"]
    assert "null" not in json.dumps(form["properties"]["depth"])


def test_the_form_fields_must_be_files_and_sent_once(server, sample_pair, to_png):
    photo, depth = sample_pair[0].read_bytes(), sample_pair[1].read_bytes()
    r = httpx.post(f"{server.url}/v1/sketch", files={"photo": photo}, data={"depth": "not a file"}, timeout=TIMEOUT)
    assert assert_json_error(r, 400) == "depth: must be a file (a multipart part with a filename), not a text field"
    r = httpx.post(f"{server.url}/v1/sketch", files=[("photo", ("a.png", photo)), ("photo", ("b.png", photo))],
                   timeout=TIMEOUT)
    assert assert_json_error(r, 400) == "photo: sent 2 times; send one"
    # A body that breaks its own boundary: 400, and nothing printed by the multipart parser.
    r = httpx.post(f"{server.url}/v1/sketch", content=b"--xyz\r\nContent-Disposition: form-data; name=\"photo\"; "
                   b"filename=\"a.png\"\r\n\r\n" + photo[:100] + b"\r\n--xyq", timeout=TIMEOUT,
                   headers={"content-type": "multipart/form-data; boundary=xyz"})
    assert r.status_code == 400 and r.headers["content-type"] == "application/json", r.text
    assert "Expected boundary" not in server.output
    assert sketch(server, {"photo": photo, "depth": depth}).status_code == 200


def test_a_photo_too_small_for_a_face_is_the_documented_422(server, to_png):
    pytest.importorskip("mediapipe", reason="the face extra (MediaPipe 0.10.21) is not installed")
    tiny = to_png(Image.new("RGB", (1, 1), (90, 120, 90)))
    message = assert_json_error(sketch(server, {"photo": tiny}), 422)
    assert message.startswith("photo: no face found: ") and "too small to hold a face" in message


def test_a_plain_get_on_the_stream_says_it_needs_a_websocket_upgrade(server):
    r = httpx.get(f"{server.url}/v1/stream", timeout=TIMEOUT)
    assert "WebSocket" in assert_json_error(r, 426) and r.headers["upgrade"] == "websocket"


# -- results equal the CLI's ----------------------------------------------------------------

def test_sketch_with_depth_equals_the_cli(server, launched, cli_outputs):
    """The astronaut pair, and a non-square one: the PNG is the CLI's, within 1 grey level."""
    cli = cli_outputs("depth")
    for photo, depth in launched["pairs"]:
        r = sketch(server, {"photo": photo.read_bytes(), "depth": depth.read_bytes()}, launched["parity_styles"]["depth"])
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "image/png" and r.headers["x-hida-input"] == "photo+depth"
        mine, theirs = grey(r.content), grey((cli / f"{photo.stem}_sketch.png").read_bytes())
        assert mine.shape == theirs.shape == np.asarray(Image.open(photo)).shape[:2]
        assert np.abs(mine - theirs).max() <= 1
        assert theirs.std() > 10  # a real sketch, not a flat image


def test_sketch_without_depth_finds_the_face_as_the_cli_does(server, launched, cli_outputs):
    cli = cli_outputs("face")
    r = sketch(server, {"photo": launched["wild"].read_bytes()}, launched["parity_styles"]["face"])  # a style mix, too
    assert r.status_code == 200, r.text
    assert r.headers["x-hida-input"] == "aligned-face"
    mine, theirs = grey(r.content), grey((cli / "wild_face.png").read_bytes())
    assert mine.shape == (256, 256)
    assert np.abs(mine - theirs).max() <= 1


# -- batching ---------------------------------------------------------------------------

def batch_counts(server) -> tuple[float, float]:
    m = metrics(server)
    return m["hida_batch_size_count{}"], m["hida_batch_size_bucket{le=1.0}"]


def test_concurrent_requests_share_backend_calls(server, sample_pair):
    files = {"photo": sample_pair[0].read_bytes(), "depth": sample_pair[1].read_bytes()}
    calls0, singles0 = batch_counts(server)

    async def burst(n):
        async with httpx.AsyncClient(timeout=TIMEOUT) as client:
            return await asyncio.gather(*(client.post(f"{server.url}/v1/sketch", files=files) for _ in range(n)))

    answers = asyncio.run(burst(4))  # the client's share of the queue is 4
    assert [r.status_code for r in answers] == [200] * 4
    assert len({r.content for r in answers}) == 1  # batched or not, the same sketch
    calls, singles = batch_counts(server)
    assert calls - calls0 < 4  # four requests, fewer backend calls
    assert (calls - calls0) - (singles - singles0) >= 1  # at least one call held more than one input


# -- errors ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bomb_png():
    """A 20000x20000 PNG (400 M pixels) compressed to ~50 kB: a decompression bomb."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    z = zlib.compressobj(9)
    row = b"\0" * (1 + 20000 // 8)
    idat = b"".join(z.compress(row) for _ in range(20000)) + z.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 20000, 20000, 1, 0, 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def test_every_bad_request_gets_its_status_and_one_json_line(server, sample_pair, bomb_png, to_png, tmp_path):
    photo, depth = sample_pair[0].read_bytes(), sample_pair[1].read_bytes()
    gif = io.BytesIO()
    Image.new("RGB", (64, 64)).save(gif, format="GIF")
    wide_depth = to_png(Image.new("L", (512, 256), 128))
    big_photo = to_png(Image.new("RGB", (1200, 1000), (120, 100, 90)))  # 1.2 M pixels, over --max-megapixels 1
    cases = [
        (400, dict(files={"photo": b"not an image", "depth": depth}), "photo: cannot read"),
        (400, dict(files={"photo": photo, "depth": b""}), "depth: the file is empty"),
        (400, dict(files={"photo": photo, "depth": depth}, params={"style": "4"}), "style must be 1, 2 or 3"),
        (400, dict(files={"photo": photo, "depth": depth}, params={"style": "1,-1,0"}), "non-negative"),
        (400, dict(files={"photo": photo, "depth": depth}, params={"style": "x" * 101}), "style"),
        (400, dict(files={"photo": photo, "depth": wide_depth}), "must show the same aligned face"),
        (400, dict(files={"depth": depth}), "photo: required"),
        (400, dict(files={"photo": photo, "depth": depth, "more": depth}), "Too many files"),
        (413, dict(files={"photo": bomb_png, "depth": depth}), "pixels"),
        (413, dict(files={"photo": big_photo}), "1200x1000 is over the limit"),
        (413, dict(files={"photo": b"\xff" * (3 * 2**20)}), "over the limit"),
        (415, dict(files={"photo": gif.getvalue()}), "GIF images are not accepted"),
        (415, dict(data={"photo": "text"}), "multipart/form-data"),
        (415, dict(content=json.dumps({"photo": "x"}), headers={"content-type": "application/json"}), "multipart"),
    ]
    for status, kw, words in cases:
        files = kw.pop("files", None)
        r = httpx.post(f"{server.url}/v1/sketch", files=files, timeout=TIMEOUT, **kw)
        assert words in assert_json_error(r, status), (status, words)
    assert_json_error(httpx.get(f"{server.url}/v1/nothing", timeout=TIMEOUT), 404)
    assert_json_error(httpx.get(f"{server.url}/v1/sketch", timeout=TIMEOUT), 405)
    assert_json_error(httpx.get(f"{server.url}/healthz", headers={"host": "evil.example"}, timeout=TIMEOUT), 400)
    assert_json_error(httpx.post(f"{server.url}/v1/sketch", files={"photo": photo},
                                 headers={"origin": "https://evil.example"}, timeout=TIMEOUT), 403)
    # A body without Content-Length (chunked) is cut off at the limit while it streams in.
    def chunks():
        yield b"--x\r\ncontent-disposition: form-data; name=\"photo\"; filename=\"p.png\"\r\n\r\n"
        for _ in range(48):
            yield b"\0" * 65536
    r = httpx.post(f"{server.url}/v1/sketch", content=chunks(), timeout=TIMEOUT,
                   headers={"content-type": "multipart/form-data; boundary=x"})
    assert "content-length" not in r.request.headers
    assert_json_error(r, 413)
    # ... and the server goes on serving.
    r = sketch(server, {"photo": photo, "depth": depth})
    assert r.status_code == 200 and grey(r.content).shape == (256, 256)


def test_a_photo_without_a_face_is_422(server, to_png):
    pytest.importorskip("mediapipe", reason="the face extra (MediaPipe 0.10.21) is not installed")
    wall = to_png(Image.new("RGB", (300, 200), (90, 120, 90)))
    assert "no face found" in assert_json_error(sketch(server, {"photo": wall}), 422)


# -- overload -----------------------------------------------------------------------------

async def post_from(client_ip: str, url: str, files, n: int):
    transport = httpx.AsyncHTTPTransport(local_address=client_ip)
    async with httpx.AsyncClient(transport=transport, timeout=TIMEOUT, limits=httpx.Limits(max_connections=n)) as c:
        return await asyncio.gather(*(c.post(f"{url}/v1/sketch", files=files) for _ in range(n)))


def test_overload_is_answered_503_with_retry_after_and_memory_stays_bounded(overload_server, sample_pair):
    """32 requests at once from 4 client addresses against a queue of 8: the rest are refused at once, and
    refused bodies do not pile up (each round refuses ~24 bodies of ~6 MB)."""
    server = overload_server
    photo = sample_pair[0].read_bytes()
    files = {"photo": photo + b"\0" * (6 * 2**20 - len(photo)), "depth": sample_pair[1].read_bytes()}
    before = server.rss_mb()

    async def blast():
        groups = await asyncio.gather(*(post_from(f"127.0.0.{i}", server.url, files, 8) for i in range(3, 7)))
        return [r for g in groups for r in g]

    rss, refused = [before], 0
    for _ in range(3):
        answers = asyncio.run(blast())
        codes = [r.status_code for r in answers]
        assert set(codes) <= {200, 503}, codes
        ok = codes.count(200)
        refused += codes.count(503)
        assert codes.count(503) >= 16 and ok >= 4, codes  # at most 8 admitted at once (a few more as slots free)
        for r in answers:
            if r.status_code == 503:
                assert int(r.headers["retry-after"]) >= 1
                assert "overloaded" in assert_json_error(r, 503) or "its share" in r.json()["error"]
        rss.append(server.rss_mb())
    # The first round lifts RSS to the plateau of a batch of 4 (docs/serve.md, Limits); after it, identical
    # rounds move this server's RSS by a few MB (OVERLOAD_ENV), so two more must add well under the ~300 MB
    # that keeping their refused bodies would (measured: +145..170 MB a round).
    assert rss[1] - rss[0] < 800, rss
    assert rss[3] - rss[1] < 100, rss
    m = metrics(server)
    assert m["hida_queue_depth{}"] == 0 and m["hida_http_in_flight_requests{}"] == 0
    assert m["hida_rejected_total{reason=Unavailable}"] >= refused


def test_one_client_cannot_take_more_than_its_share(server, sample_pair):
    """Client A sends 7 at once (its share is 4 of 8); client B, sending at the same time, is still served."""
    files = {"photo": sample_pair[0].read_bytes(), "depth": sample_pair[1].read_bytes()}

    async def both():
        return await asyncio.gather(post_from("127.0.0.8", server.url, files, 7),
                                    post_from("127.0.0.9", server.url, files, 1))

    greedy, polite = asyncio.run(both())
    codes = [r.status_code for r in greedy]
    assert codes.count(200) <= 5 and codes.count(503) >= 2, codes
    assert any("its share" in r.json()["error"] for r in greedy if r.status_code == 503)
    assert polite[0].status_code == 200, polite[0].text


def test_damaged_images_are_400_with_the_reason_and_other_formats_415_by_name(server, sample_pair):
    photo, depth = sample_pair[0].read_bytes(), sample_pair[1].read_bytes()
    tga = io.BytesIO()
    Image.new("RGB", (64, 64), (90, 120, 150)).save(tga, format="TGA")  # starts like a CUR file
    damaged = photo[:8] + np.random.default_rng(0).bytes(400)  # a PNG signature, then noise
    cases = [
        (400, {"photo": damaged, "depth": depth}, "photo: cannot read as an image (broken PNG file)"),
        (400, {"photo": photo[:len(photo) // 2], "depth": depth},
         "photo: cannot read as an image (image file is truncated)"),
        (415, {"photo": tga.getvalue(), "depth": depth}, "photo: TGA images are not accepted"),
    ]
    for status, files, words in cases:
        assert words in assert_json_error(sketch(server, files), status), (status, words)


def test_a_16bit_photo_is_sketched_like_its_8bit_version(server, sample_pair, to_png):
    eight = np.asarray(Image.open(sample_pair[0]).convert("L"))
    depth = sample_pair[1].read_bytes()
    r8 = sketch(server, {"photo": to_png(Image.fromarray(eight, mode="L")), "depth": depth})
    r16 = sketch(server, {"photo": to_png(Image.fromarray(eight.astype(np.uint16) * 257)), "depth": depth})
    assert r8.status_code == r16.status_code == 200, (r8.text, r16.text)
    assert np.abs(grey(r8.content) - grey(r16.content)).max() <= 1
