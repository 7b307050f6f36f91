"""The engine manifest: fields, round trip, and refusal of anything that is not a valid manifest."""
from __future__ import annotations

import json
from dataclasses import asdict

import pytest

from hida_rt.export.manifest import FORMAT, FORMAT_VERSION, ManifestError, manifest_path, read_manifest, write_manifest


def test_manifest_sits_beside_the_engine(tmp_path):
    assert manifest_path(tmp_path / "engines" / "hida_fp16.plan") == tmp_path / "engines" / "hida_fp16.plan.json"


def test_round_trip_keeps_every_field(tmp_path, built_manifest):
    m = built_manifest()
    path = write_manifest(m, tmp_path / "e.plan.json")
    data = json.loads(path.read_text())
    for key in ("inputs", "outputs", "batch", "precision", "tensorrt_version", "cuda_version", "gpu_name",
                "compute_capability", "weights_sha256", "engine_sha256", "parity", "status", "created"):
        assert key in data, key
    assert data["format"] == FORMAT and data["format_version"] == FORMAT_VERSION
    assert asdict(read_manifest(path)) == asdict(m)


def test_unknown_fields_from_a_newer_writer_are_ignored(tmp_path, built_manifest):
    data = asdict(built_manifest())
    data["something_new"] = {"x": 1}
    path = tmp_path / "e.plan.json"
    path.write_text(json.dumps(data))
    assert read_manifest(path).engine == "hida_fp16.plan"


def test_an_unbuilt_manifest_needs_no_versions(tmp_path, built_manifest):
    m = built_manifest(status="unbuilt", engine_sha256=None, tensorrt_version=None, gpu_name=None,
                       compute_capability=None, missing="TensorRT is not installed",
                       finish_command="python -m hida_rt.build --weights w.pth")
    assert read_manifest(write_manifest(m, tmp_path / "u.json")).finish_command.startswith("python -m hida_rt.build")


@pytest.mark.parametrize("change, message", [
    (dict(format="something.else"), "format"),
    (dict(format_version=99), "format version"),
    (dict(status="half-built"), "status"),
    (dict(precision="int8"), "precision"),
    (dict(batch={"min": 1, "opt": 9, "max": 8}), "batch"),
    (dict(inputs=[]), "inputs"),
    (dict(tensorrt_version=None), "TensorRT version"),
    (dict(engine_sha256=None), "SHA-256"),
])
def test_invalid_manifests_are_refused_and_never_written(tmp_path, built_manifest, change, message):
    path = tmp_path / "bad.json"
    with pytest.raises(ManifestError, match=message):
        write_manifest(built_manifest(**change), path)
    assert not path.exists()
    path.write_text(json.dumps(asdict(built_manifest(**change))))
    with pytest.raises(ManifestError, match=message):
        read_manifest(path)


@pytest.mark.parametrize("content, message", [
    ("{not json", "unreadable manifest"),
    ("[1, 2]", "not a JSON object"),
    (json.dumps({"status": "built"}), "missing field"),
    (b"\xff\xfe\x00", "unreadable manifest"),
])
def test_corrupt_files_are_refused_in_one_line(tmp_path, content, message):
    path = tmp_path / "corrupt.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(ManifestError, match=message) as e:
        read_manifest(path)
    assert "\n" not in str(e.value) and str(path) in str(e.value)


def test_missing_manifest(tmp_path):
    with pytest.raises(ManifestError, match="no manifest"):
        read_manifest(tmp_path / "absent.plan.json")
