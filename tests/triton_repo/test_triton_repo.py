"""The Triton Inference Server model repository: written from the model, checked with Triton's own schema.

config.pbtxt is parsed with the official model-config protobuf (tritonclient's
model_config_pb2, google.protobuf.text_format): a field or enum Triton does
not know fails the parse. Names, types and dims are then compared with the
model file itself (the ONNX graph; an engine's manifest), and the ONNX is run
in onnxruntime at the shapes the config announces. Not served here: no
tritonserver with the onnxruntime/TensorRT backends installs on these machines.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
import pytest

model_config_pb2 = pytest.importorskip(
    "tritonclient.grpc.model_config_pb2", reason="tritonclient[grpc] (Triton's model-config schema) is not installed")
from google.protobuf import text_format
from hida_rt.export import triton_repo as tr
from hida_rt.export.manifest import Manifest, manifest_path, now_utc, write_manifest

# Independent of the code under test: ONNX element types and numpy names as Triton spells them.
ONNX_TO_TRITON = {onnx.TensorProto.FLOAT: "TYPE_FP32", onnx.TensorProto.FLOAT16: "TYPE_FP16"}
NUMPY_OF = {"TYPE_FP32": np.float32, "TYPE_FP16": np.float16}


def parse(config: Path):
    return text_format.Parse(config.read_text(), model_config_pb2.ModelConfig())


def tensors(group) -> dict[str, tuple[str, list[int]]]:
    return {t.name: (model_config_pb2.DataType.Name(t.data_type), list(t.dims)) for t in group}


def test_export_writes_the_onnx_repository_layout(triton_export):
    repo = triton_export.repo
    files = sorted(p.relative_to(repo).as_posix() for p in repo.rglob("*") if p.is_file())
    assert files == ["hida/1/model.onnx", "hida/config.pbtxt"]
    assert (repo / "hida/1/model.onnx").read_bytes() == triton_export.onnx.read_bytes()
    assert "wrote the Triton model repository" in triton_export.stdout and "onnxruntime_onnx" in triton_export.stdout


def test_onnx_config_parses_with_tritons_schema_and_matches_the_model(triton_export):
    config = parse(triton_export.repo / "hida/config.pbtxt")
    assert (config.name, config.platform, config.default_model_filename) == ("hida", "onnxruntime_onnx", "model.onnx")
    assert config.max_batch_size == tr.DEFAULT_ONNX_MAX_BATCH
    assert config.HasField("dynamic_batching") and config.dynamic_batching.max_queue_delay_microseconds > 0
    assert [(g.count, model_config_pb2.ModelInstanceGroup.Kind.Name(g.kind)) for g in config.instance_group] == \
        [(1, "KIND_CPU")]

    graph = onnx.load(str(triton_export.repo / "hida/1/model.onnx"), load_external_data=False).graph
    weights = {i.name for i in graph.initializer}

    def from_graph(values) -> dict[str, tuple[str, list[int]]]:
        out = {}
        for v in values:
            dims = v.type.tensor_type.shape.dim
            assert dims[0].dim_param and not dims[0].HasField("dim_value"), f"{v.name}: batch must be dynamic"
            out[v.name] = (ONNX_TO_TRITON[v.type.tensor_type.elem_type], [d.dim_value for d in dims[1:]])
        return out

    assert tensors(config.input) == from_graph(v for v in graph.input if v.name not in weights)
    assert tensors(config.output) == from_graph(graph.output)
    assert set(tensors(config.input)) == {"photo", "depth", "style"} and set(tensors(config.output)) == {"sketch"}


def test_the_onnx_runs_at_the_shapes_the_config_announces(triton_export):
    """What Triton's onnxruntime backend would feed it: [batch, *dims] of each input's type."""
    import onnxruntime
    config = parse(triton_export.repo / "hida/config.pbtxt")
    session = onnxruntime.InferenceSession(str(triton_export.repo / "hida/1/model.onnx"),
                                           providers=["CPUExecutionProvider"])
    batch = 2
    rng = np.random.default_rng(0)
    feeds = {name: rng.random((batch, *dims)).astype(NUMPY_OF[kind]) for name, (kind, dims) in
             tensors(config.input).items()}
    outputs = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds)))
    for name, (kind, dims) in tensors(config.output).items():
        assert outputs[name].shape == (batch, *dims) and outputs[name].dtype == NUMPY_OF[kind]
        assert np.isfinite(outputs[name]).all()


def test_repository_cli_from_an_onnx_file(triton_export, tmp_path, captured):
    code, _, err = captured(tr.main, [str(triton_export.onnx), str(tmp_path / "repo"), "--name", "sketcher",
                                        "--max-batch", "4", "--instances", "2", "--queue-delay-us", "500"])
    assert code == 0, err
    config = parse(tmp_path / "repo/sketcher/config.pbtxt")
    assert (config.name, config.max_batch_size, config.dynamic_batching.max_queue_delay_microseconds) == \
        ("sketcher", 4, 500)
    assert config.instance_group[0].count == 2
    assert (tmp_path / "repo/sketcher/1/model.onnx").is_file()


def _engine(tmp_path: Path, *, status: str = "built", dtype: str = "float32", max_batch: int = 8) -> Path:
    """A plan file and the manifest hida_rt.build writes beside it (the plan's bytes are not an engine:
    the repository copies them and takes every fact from the manifest)."""
    plan = tmp_path / "engines" / "hida_fp16.plan"
    plan.parent.mkdir(parents=True, exist_ok=True)
    plan.write_bytes(b"serialized engine bytes" * 100)
    built = status == "built"
    m = Manifest(
        status=status, engine=plan.name, trt_onnx="hida_fp16.trt.onnx", precision="fp16", height=256, width=256,
        batch={"min": 1, "opt": 2, "max": max_batch},
        inputs=[{"name": "photo", "dtype": dtype, "shape": [-1, 3, 256, 256]},
                {"name": "depth", "dtype": dtype, "shape": [-1, 1, 256, 256]},
                {"name": "style", "dtype": dtype, "shape": [-1, 3]}],
        outputs=[{"name": "sketch", "dtype": dtype, "shape": [-1, 1, 256, 256]}],
        weights_sha256="a" * 64, trt_onnx_sha256="b" * 64, hida_rt_version="0.1.0", created=now_utc(),
        engine_sha256=hashlib.sha256(plan.read_bytes()).hexdigest() if built else None,
        tensorrt_version="10.13.0.35" if built else None, gpu_name="NVIDIA H100 80GB HBM3",
        compute_capability="9.0" if built else None, missing=None if built else "TensorRT is not installed",
        finish_command=None if built else "python -m hida_rt.build --weights w.pth")
    write_manifest(m, manifest_path(plan))
    return plan


@pytest.mark.parametrize("dtype, triton_type", [("float32", "TYPE_FP32"), ("float16", "TYPE_FP16")])
def test_plan_repository_follows_the_engine_manifest(tmp_path, dtype, triton_type):
    plan = _engine(tmp_path, dtype=dtype, max_batch=6)
    summary = tr.write_repository(plan, tmp_path / "models")
    assert summary.max_batch_size == 6 and summary.platform == "tensorrt_plan"
    config = parse(tmp_path / "models/hida/config.pbtxt")
    assert (config.platform, config.default_model_filename, config.max_batch_size) == \
        ("tensorrt_plan", "model.plan", 6)
    manifest = json.loads(manifest_path(plan).read_text())
    assert tensors(config.input) == {t["name"]: (triton_type, t["shape"][1:]) for t in manifest["inputs"]}
    assert tensors(config.output) == {t["name"]: (triton_type, t["shape"][1:]) for t in manifest["outputs"]}
    assert model_config_pb2.ModelInstanceGroup.Kind.Name(config.instance_group[0].kind) == "KIND_GPU"
    assert config.HasField("dynamic_batching")
    assert (tmp_path / "models/hida/1/model.plan").read_bytes() == plan.read_bytes()
    header = [line for line in (tmp_path / "models/hida/config.pbtxt").read_text().splitlines()
              if line.startswith("#")]
    assert any("TensorRT 10.13.0.35" in line and "compute capability 9.0" in line for line in header)


def test_plan_refusals(tmp_path):
    from hida_rt.errors import HidaError
    plan = _engine(tmp_path)
    with pytest.raises(HidaError, match="exceeds the engine's optimization profile"):
        tr.write_repository(plan, tmp_path / "m", max_batch=9)
    plan.write_bytes(b"another engine")
    with pytest.raises(HidaError, match="SHA-256"):
        tr.write_repository(plan, tmp_path / "m")
    unbuilt = _engine(tmp_path / "u", status="unbuilt")
    with pytest.raises(HidaError, match="never built"):
        tr.write_repository(unbuilt, tmp_path / "m")
    no_manifest = tmp_path / "x.plan"
    no_manifest.write_bytes(b"x")
    with pytest.raises(HidaError, match="no manifest"):
        tr.write_repository(no_manifest, tmp_path / "m")
    with pytest.raises(HidaError, match="not a TensorRT engine"):
        tr.write_repository(tmp_path / "model.pt2", tmp_path / "m")
    (tmp_path / "afile").write_text("x")
    with pytest.raises(HidaError, match="not a folder"):
        tr.write_repository(plan, tmp_path / "afile")
    assert not (tmp_path / "m").exists()


def test_a_new_kind_replaces_the_old_model_file(triton_export, tmp_path):
    repo = tmp_path / "models"
    tr.write_repository(triton_export.onnx, repo)
    tr.write_repository(_engine(tmp_path), repo)
    assert sorted(p.name for p in (repo / "hida/1").iterdir()) == ["model.plan"]
    assert parse(repo / "hida/config.pbtxt").platform == "tensorrt_plan"


@pytest.mark.parametrize("argv, message", [
    (["--triton-name", "x"], "--triton-name applies only with --triton-repo"),
    (["--triton-repo", "R", "--triton-max-batch", "9", "--max-batch", "8"], "exceeds the engine's --max-batch 8"),
    (["--triton-repo", "R", "--triton-instances", "0"], "instances must be at least 1"),
])
def test_build_refuses_bad_triton_options_before_building(spread_ckpt, tmp_path, captured, argv, message):
    from hida_rt.build import main as build_main
    argv = [a.replace("R", str(tmp_path / "repo")) if a == "R" else a for a in argv]
    code, _, err = captured(build_main, ["--weights", str(spread_ckpt), "-o", str(tmp_path / "e.plan"), *argv])
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not list(tmp_path.iterdir())   # nothing built, nothing written


def test_export_refuses_a_triton_repo_for_pt2(spread_ckpt, tmp_path, captured):
    from hida_rt.export.__main__ import main as export_main
    code, _, err = captured(export_main, ["--weights", str(spread_ckpt), "-o", str(tmp_path / "m.pt2"),
                                          "--format", "pt2", "--triton-repo", str(tmp_path / "r")])
    assert code == 2 and "--triton-repo takes --format onnx" in err


@pytest.mark.slow
def test_build_without_tensorrt_writes_no_repository_and_says_how_to_finish(spread_ckpt, tmp_path, captured):
    pytest.importorskip("onnx_graphsurgeon", reason="the build's graph passes need onnx-graphsurgeon")
    from hida_rt.export import tensorrt_builder as tb

    from hida_rt.build import EXIT_NOT_BUILT
    from hida_rt.build import main as build_main
    if not tb.missing_for_build(tb.environment()):
        pytest.skip("TensorRT and a GPU are here: this checks the machine without them")
    repo = tmp_path / "models"
    code, _, err = captured(build_main, ["--weights", str(spread_ckpt), "-o", str(tmp_path / "e.plan"), "-q",
                                         "--triton-repo", str(repo)])
    assert code == EXIT_NOT_BUILT
    assert f"--triton-repo {repo} (no Triton repository written here: it needs the engine)" in err
    assert len(err.strip().splitlines()) == 1 and not repo.exists()
