"""The Open Inference Protocol (KServe v2) with NVIDIA's own clients, tritonclient.http and tritonclient.grpc,
against the keyed server (127.0.0.2, API key, --grpc-port 0): health, metadata equal to the config.pbtxt
`python -m hida_rt.export --triton-repo` writes for the same weights, sketches equal to the eager backend's
(FP32, 1e-4), binary and JSON tensors, rows of several requests merged by the dynamic batcher, and every
protocol error as one line with its status, the server serving on."""
from __future__ import annotations

import json
import threading
import time

import httpx
import numpy as np
import pytest

grpcclient = pytest.importorskip("tritonclient.grpc", reason="tritonclient[grpc] is not installed")
httpclient = pytest.importorskip("tritonclient.http", reason="tritonclient[http] is not installed")
from google.protobuf import text_format  # noqa: E402
from tritonclient.grpc import model_config_pb2  # noqa: E402
from tritonclient.utils import InferenceServerException  # noqa: E402

AUTH: dict[str, str] = {}  # the keyed server's Authorization header, set by the v2 fixture
MODEL = "hida"


def auth() -> dict[str, str]:
    """A fresh copy each call: tritonclient.http adds its own headers to the dict it is given."""
    return dict(AUTH)


TOLERANCE = 1e-4  # FP32 paths vs FP32 eager (docs/architecture.md, "Precision targets")
TIMEOUT_S = 120.0


@pytest.fixture(scope="module")
def v2(keyed):
    AUTH["authorization"] = f"Bearer {keyed.api_key}"  # lower case: gRPC metadata keys must be
    keyed.max_batch = keyed.wait_ready()["max_batch"]
    keyed.address = keyed.url.removeprefix("http://")
    keyed.grpc = keyed.grpc_address()
    return keyed


@pytest.fixture(scope="module")
def http(v2):
    client = httpclient.InferenceServerClient(v2.address, connection_timeout=TIMEOUT_S, network_timeout=TIMEOUT_S)
    yield client
    client.close()


@pytest.fixture(scope="module")
def grpc_client(v2):
    client = grpcclient.InferenceServerClient(v2.grpc)
    yield client
    client.close()


@pytest.fixture(scope="module")
def inputs():
    rng = np.random.default_rng(22)
    photo = (rng.random((3, 3, 256, 256), dtype=np.float32) * 2 - 1)
    depth = rng.random((3, 1, 256, 256), dtype=np.float32)
    style = np.array([[1, 0, 0], [0, 0.5, 0.5], [0.2, 0.3, 0.5]], dtype=np.float32)
    return {"photo": photo, "depth": depth, "style": style}


@pytest.fixture(scope="module")
def eager_sketches(spread_ckpt, inputs):
    from hida_rt.backends import create_backend

    backend = create_backend("eager", spread_ckpt, device="cpu", progress=False)
    return backend.run(inputs["photo"], inputs["depth"], inputs["style"])


def tensors(module, arrays: dict, binary: bool = True, datatype: str = "FP32") -> list:
    out = []
    for name, a in arrays.items():
        t = module.InferInput(name, list(a.shape), datatype)
        if module is httpclient:
            t.set_data_from_numpy(a, binary_data=binary)
        else:
            t.set_data_from_numpy(a)
        out.append(t)
    return out


def rows(arrays: dict, lo: int, hi: int) -> dict:
    return {k: np.ascontiguousarray(v[lo:hi]) for k, v in arrays.items()}


def metric(url: str, name: str, **labels) -> float:
    """A sample's value from /metrics (0 if absent); labels in any order."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{url}/metrics", headers=auth(), timeout=30).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return 0.0


def test_health_and_server_metadata_over_http_and_grpc(http, grpc_client):
    for client in (http, grpc_client):
        assert client.is_server_live(headers=auth())
        assert client.is_server_ready(headers=auth())
        assert client.is_model_ready(MODEL, headers=auth())
        assert client.is_model_ready(MODEL, "1", headers=auth())
    meta = http.get_server_metadata(headers=auth())
    assert meta["name"] == "hida_rt" and "binary_tensor_data" in meta["extensions"]
    assert list(grpc_client.get_server_metadata(headers=auth()).extensions) == meta["extensions"]


def test_model_metadata_and_config_equal_the_triton_repository_hida_rt_writes(v2, http, grpc_client, triton_config):
    written = text_format.Parse(triton_config.read_text(), model_config_pb2.ModelConfig())
    assert written.max_batch_size == v2.max_batch

    def expected(group):
        return [{"name": t.name, "datatype": model_config_pb2.DataType.Name(t.data_type).removeprefix("TYPE_"),
                 "shape": [-1, *t.dims]} for t in group]

    meta = http.get_model_metadata(MODEL, headers=auth())
    assert meta["name"] == written.name and meta["versions"] == ["1"]
    assert meta["inputs"] == expected(written.input) and meta["outputs"] == expected(written.output)
    g = grpc_client.get_model_metadata(MODEL, headers=auth())
    assert [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)} for t in g.inputs] == meta["inputs"]
    assert [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)} for t in g.outputs] == meta["outputs"]
    # The configuration: the repository's, as Triton answers it (over gRPC the ModelConfig message itself).
    config = grpc_client.get_model_config(MODEL, headers=auth()).config
    assert (config.name, config.max_batch_size) == (written.name, written.max_batch_size)
    assert list(config.input) == list(written.input) and list(config.output) == list(written.output)
    http_config = http.get_model_config(MODEL, headers=auth())
    assert http_config["max_batch_size"] == written.max_batch_size
    assert [(t["name"], t["data_type"], t["dims"]) for t in http_config["input"]] == \
        [(t.name, model_config_pb2.DataType.Name(t.data_type), list(t.dims)) for t in written.input]


def test_sketches_equal_eager_and_requests_share_backend_calls(v2, grpc_client, inputs, eager_sketches):
    """A: HTTP binary tensors, batch 3. While the backend computes it, B (gRPC, row 0) and C (HTTP, row 1)
    arrive: the batcher runs them together, so the 5 rows take 2 backend calls."""
    calls0, rows0 = metric(v2.url, "hida_batch_size_count"), metric(v2.url, "hida_batch_size_sum")
    results: dict = {}

    def a():  # tritonclient.http's client (gevent) belongs to the thread that made it: one per thread
        local = httpclient.InferenceServerClient(v2.address, network_timeout=TIMEOUT_S)
        r = local.infer(MODEL, tensors(httpclient, inputs), request_id="a-3",
                        outputs=[httpclient.InferRequestedOutput("sketch", binary_data=True)], headers=auth())
        results["a"] = (r.as_numpy("sketch"), r.get_response()["id"])
        local.close()

    def b():
        r = grpc_client.infer(MODEL, tensors(grpcclient, rows(inputs, 0, 1)), request_id="b-1", headers=auth(),
                              client_timeout=TIMEOUT_S)
        results["b"] = (r.as_numpy("sketch"), r.get_response().id)

    def c():
        local = httpclient.InferenceServerClient(v2.address, network_timeout=TIMEOUT_S)
        r = local.infer(MODEL, tensors(httpclient, rows(inputs, 1, 2)), request_id="c-1", headers=auth())
        results["c"] = (r.as_numpy("sketch"), r.get_response()["id"])
        local.close()

    first = threading.Thread(target=a)
    first.start()
    deadline = time.monotonic() + 30
    while metric(v2.url, "hida_http_in_flight_requests") == 0:  # A admitted: its rows go to the backend next
        assert time.monotonic() < deadline and first.is_alive(), "request A never reached the batcher"
        time.sleep(0.02)
    later = [threading.Thread(target=f) for f in (b, c)]
    for t in later:
        t.start()
    for t in (first, *later):
        t.join(TIMEOUT_S)
    assert set(results) == {"a", "b", "c"}, results.keys()

    sketch, rid = results["a"]
    assert rid == "a-3" and sketch.shape == (3, 1, 256, 256) and sketch.dtype == np.float32
    assert np.abs(sketch - eager_sketches).max() <= TOLERANCE
    sketch, rid = results["b"]
    assert rid == "b-1" and np.abs(sketch - eager_sketches[0:1]).max() <= TOLERANCE
    sketch, rid = results["c"]
    assert rid == "c-1" and np.abs(sketch - eager_sketches[1:2]).max() <= TOLERANCE
    assert metric(v2.url, "hida_batch_size_sum") - rows0 == 5
    assert metric(v2.url, "hida_batch_size_count") - calls0 == 2, "B and C were not merged into one backend call"


def test_json_tensors_and_requested_outputs(http, grpc_client, inputs, eager_sketches):
    one = rows(inputs, 2, 3)
    r = http.infer(MODEL, tensors(httpclient, one, binary=False), request_id="json",
                   outputs=[httpclient.InferRequestedOutput("sketch", binary_data=False)], headers=auth())
    output = r.get_response()["outputs"][0]
    assert r.get_response()["id"] == "json" and "data" in output and "parameters" not in output  # JSON, as asked
    assert np.abs(r.as_numpy("sketch") - eager_sketches[2:3]).max() <= TOLERANCE
    r = http.infer(MODEL, tensors(httpclient, one), headers=auth())  # no outputs named: all of them, binary
    assert r.get_response()["outputs"][0]["parameters"]["binary_data_size"] == 256 * 256 * 4
    assert np.abs(r.as_numpy("sketch") - eager_sketches[2:3]).max() <= TOLERANCE
    r = grpc_client.infer(MODEL, tensors(grpcclient, one), outputs=[grpcclient.InferRequestedOutput("sketch")],
                          model_version="1", headers=auth())
    assert [o.name for o in r.get_response().outputs] == ["sketch"]
    assert np.abs(r.as_numpy("sketch") - eager_sketches[2:3]).max() <= TOLERANCE


# -- errors: one line each, the protocol's status, the server serving on ---------------------------------
def _bad(inputs, max_batch: int) -> dict[str, tuple[dict, dict, str, str, str]]:
    """name -> (infer kwargs, arrays, http status, grpc code, message part)."""
    one = rows(inputs, 0, 1)
    nan_style = {**one, "style": np.array([[np.nan, 0, 1]], dtype=np.float32)}
    small = {**one, "photo": np.zeros((1, 3, 128, 128), np.float32)}
    over = {k: np.repeat(v, max_batch + 1, axis=0) for k, v in one.items()}
    uneven = {**one, "style": np.repeat(one["style"], 2, axis=0)}
    return {
        "wrong datatype": ({}, {**one, "photo": one["photo"].astype(np.float64)}, "400", "INVALID_ARGUMENT",
                           "data-type is 'FP64', but model 'hida' expects 'FP32'"),
        "wrong shape": ({}, small, "400", "INVALID_ARGUMENT", "unexpected shape for input 'photo'"),
        "missing input": ({}, {k: v for k, v in one.items() if k != "style"}, "400", "INVALID_ARGUMENT",
                          "missing 'style'"),
        "unknown input": ({}, {**one, "mask": one["style"]}, "400", "INVALID_ARGUMENT",
                          "unexpected inference input 'mask'"),
        "unknown model": ({"model_name": "nope"}, one, "404", "NOT_FOUND", "unknown model: 'nope'"),
        "unknown version": ({"model_version": "2"}, one, "404", "NOT_FOUND", "'hida' version 2 is not found"),
        "non-finite style": ({}, nan_style, "400", "INVALID_ARGUMENT", "input 'style' holds non-finite values"),
        "batch over max": ({}, over, "400", "INVALID_ARGUMENT", f"batch-size must be <= {max_batch}"),
        "uneven batch": ({}, uneven, "400", "INVALID_ARGUMENT", "different batch sizes"),
        "unknown output": ({"outputs": "mask"}, one, "400", "INVALID_ARGUMENT", "unexpected inference output 'mask'"),
    }


BAD_CASES = ("wrong datatype", "wrong shape", "missing input", "unknown input", "unknown model", "unknown version",
             "non-finite style", "batch over max", "uneven batch", "unknown output")


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_requests_get_one_line_with_the_protocols_status(case, v2, http, grpc_client, inputs):
    kwargs, arrays, status, code, part = _bad(inputs, v2.max_batch)[case]
    kwargs = dict(kwargs)
    model = kwargs.pop("model_name", MODEL)
    output = kwargs.pop("outputs", None)
    for module, client in ((httpclient, http), (grpcclient, grpc_client)):
        dtype = "FP64" if case == "wrong datatype" else "FP32"
        ins = []
        for name, a in arrays.items():
            t = module.InferInput(name, list(a.shape), dtype if name == "photo" else "FP32")
            t.set_data_from_numpy(a)
            ins.append(t)
        outs = [module.InferRequestedOutput(output)] if output else None
        with pytest.raises(InferenceServerException) as e:
            client.infer(model, ins, outputs=outs, headers=auth(), **kwargs)
        got = e.value.status() if module is httpclient else e.value.status().removeprefix("StatusCode.")
        assert got == (status if module is httpclient else code), (module.__name__, e.value)
        assert part in e.value.message() and "\n" not in e.value.message(), e.value.message()
        assert client.is_server_live(headers=auth())


def _post(v2, body: bytes, headers: dict) -> httpx.Response:
    return httpx.post(f"{v2.url}/v2/models/{MODEL}/infer", content=body, headers={**auth(), **headers}, timeout=60)


def test_binary_sizes_that_do_not_add_up_are_refused(v2, inputs):
    one = rows(inputs, 0, 1)
    body, json_size = httpclient.InferenceServerClient.generate_request_body(tensors(httpclient, one))
    header = {"Inference-Header-Content-Length": str(json_size)}
    ok = _post(v2, body, header)
    assert ok.status_code == 200, ok.text
    cases = {"a byte short": (body[:-1], header, "goes past the end of the binary data"),
             "a byte over": (body + b"\0", header, "add up to"),
             "header past the body": (body, {"Inference-Header-Content-Length": str(len(body) + 1)},
                                      "but the body has"),
             "no header length": (body, {}, "not valid JSON"),
             "not a number": (body, {"Inference-Header-Content-Length": "x"}, "is not a number")}
    for name, (data, headers, part) in cases.items():
        r = _post(v2, data, headers)
        assert r.status_code == 400 and r.headers["content-type"] == "application/json", (name, r.text)
        assert part in r.json()["error"], (name, r.json())
    request = json.loads(body[:json_size])
    request["inputs"][0]["parameters"]["binary_data_size"] -= 4    # photo says 4 bytes fewer than its shape
    request["inputs"][1]["parameters"]["binary_data_size"] += 4
    text = json.dumps(request).encode()
    r = _post(v2, text + body[json_size:], {"Inference-Header-Content-Length": str(len(text))})
    assert r.status_code == 400 and "unexpected size for input 'photo'" in r.json()["error"], r.text
    r = _post(v2, b'{"inputs": [{"name": "style", "shape": [1, 3], "datatype": "FP32", "data": [NaN, 0, 1]}]}', {})
    assert r.status_code == 400 and "finite" in r.json()["error"], r.text


def test_grpc_raw_contents_of_the_wrong_size_are_refused(grpc_client, inputs):
    from tritonclient.grpc import service_pb2

    one = rows(inputs, 0, 1)
    request = service_pb2.ModelInferRequest(model_name=MODEL)
    for name, a in one.items():
        request.inputs.add(name=name, datatype="FP32", shape=a.shape)
        request.raw_input_contents.append(a.tobytes()[:-4] if name == "depth" else a.tobytes())
    stub = grpc_client._client_stub
    import grpc

    with pytest.raises(grpc.RpcError) as e:
        stub.ModelInfer(request, metadata=tuple(AUTH.items()), timeout=60)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "unexpected size for input 'depth'" in e.value.details()
    del request.raw_input_contents[-1]
    with pytest.raises(grpc.RpcError) as e:
        stub.ModelInfer(request, metadata=tuple(AUTH.items()), timeout=60)
    assert "raw_input_contents has 2 entries for 3 inputs" in e.value.details()


def test_oversize_requests_and_missing_keys_are_refused(v2, http, grpc_client):
    big = {"photo": np.zeros((28, 3, 256, 256), np.float32)}   # 22 MB: over the 20 MiB default body limit
    with pytest.raises(InferenceServerException) as e:
        http.infer(MODEL, tensors(httpclient, big), headers=auth())
    assert e.value.status() == "413" and "over the limit" in e.value.message()
    with pytest.raises(InferenceServerException) as e:
        grpc_client.infer(MODEL, tensors(grpcclient, big), headers=auth())
    assert e.value.status() == "StatusCode.RESOURCE_EXHAUSTED"
    with pytest.raises(InferenceServerException) as e:
        http.get_model_metadata(MODEL)
    assert e.value.status() == "401"
    with pytest.raises(InferenceServerException) as e:
        grpc_client.get_model_metadata(MODEL, headers={"authorization": "Bearer wrong-key-0123456789"})
    assert e.value.status() == "StatusCode.UNAUTHENTICATED" and "API key" in e.value.message()
    assert http.is_server_ready(headers=auth()) and grpc_client.is_server_ready(headers=auth())


def test_metrics_count_v2_requests_and_errors(v2, http, grpc_client):
    with pytest.raises(InferenceServerException):
        http.get_model_metadata("nope", headers=auth())
    with pytest.raises(InferenceServerException):
        grpc_client.get_model_metadata("nope", headers=auth())
    assert metric(v2.url, "hida_http_requests_total", route="/v2/models/{model}", method="GET", status="404") >= 1
    assert metric(v2.url, "hida_http_requests_total", route="/v2/models/{model}", method="GET", status="200") >= 1
    assert metric(v2.url, "hida_grpc_requests_total", method="ModelMetadata", code="NOT_FOUND") >= 1
    assert metric(v2.url, "hida_grpc_requests_total", method="ServerLive", code="OK") >= 1


def test_grpc_port_is_refused_with_ray_and_when_taken():
    import asyncio
    import socket

    from hida_rt.cli import run_cli
    from hida_rt.errors import HidaError
    from hida_rt.serve.__main__ import main, v2_model
    from hida_rt.serve.settings import Settings
    from hida_rt.serve.v2_grpc import GrpcService

    assert run_cli(main, ["--weights", __file__, "--ray", "--grpc-port", "0"], prog="hida_rt.serve") == 2
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        service = GrpcService(v2_model(Settings()), Settings(), port, announce=lambda line: None)
        with pytest.raises(HidaError, match=f"cannot listen for gRPC on 127.0.0.1:{port}"):
            asyncio.run(service.start(None))
