"""The manifest beside every TensorRT engine: `<engine>.json` (engines/hida_fp16.plan -> hida_fp16.plan.json).

A serialized engine runs only under the TensorRT version that built it and
on GPUs of the compute capability it was built for, and says neither about
itself in a way a user can read. The manifest records what is needed to
refuse clearly instead of failing deep inside TensorRT:

- status "built" (engine written) or "unbuilt" (TensorRT ONNX written, no
  engine: `missing` says what this machine lacked, `finish_command` how to
  finish elsewhere);
- the engine and TensorRT ONNX file names (beside the manifest) and SHA-256s,
  the source weights' SHA-256, hida_rt's version;
- inputs and outputs: name, dtype, shape with -1 for the batch, and the
  optimization profile (min/opt/max batch);
- precision, TensorRT and CUDA versions, GPU name and compute capability;
- the PTX ISA version of the plugins' PTX (`ptx_isa`, export.plugins.ptx_isa),
  which the running driver must accept;
- the graph-pass report and parity figures (`--verify`).

`check_runnable(manifest, environment)` is the refusal logic of the
tensorrt backend as a pure function of the manifest and the running
machine's versions, so every refusal is testable without TensorRT.
"""
from __future__ import annotations

import datetime as _dt
import json
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from hida_rt.cli import atomic_path
from hida_rt.errors import BackendUnavailable, InputError

FORMAT = "hida_rt.tensorrt_engine"
FORMAT_VERSION = 1
STATUSES = ("built", "unbuilt")
PRECISIONS = ("fp16", "fp32")


class ManifestError(InputError):
    """A manifest that is missing, unreadable, or not a hida_rt engine manifest."""


class EngineMismatch(BackendUnavailable):
    """An engine that cannot run here (other TensorRT version, other GPU, not built)."""


def manifest_path(engine: str | Path) -> Path:
    engine = Path(engine)
    return engine.with_name(engine.name + ".json")


@dataclass
class Manifest:
    status: str
    engine: str                      # file name, beside the manifest
    trt_onnx: str                    # file name, beside the manifest
    precision: str
    height: int
    width: int
    batch: dict[str, int]            # {"min", "opt", "max"}
    inputs: list[dict[str, Any]]     # [{"name", "dtype", "shape"}], -1 = batch
    outputs: list[dict[str, Any]]
    weights_sha256: str | None
    trt_onnx_sha256: str | None
    hida_rt_version: str
    created: str
    plugins: dict[str, int] = field(default_factory=dict)
    engine_sha256: str | None = None
    tensorrt_version: str | None = None
    cuda_version: str | None = None
    gpu_name: str | None = None
    compute_capability: str | None = None   # "9.0"
    graph_passes: dict[str, Any] = field(default_factory=dict)
    parity: dict[str, Any] = field(default_factory=dict)
    missing: str | None = None
    finish_command: str | None = None
    weights: str | None = None       # the path given at build time, for people; the hash is what counts
    ptx_isa: str | None = None       # "8.8": the .version of the plugins' PTX (export.plugins.ptx_isa)
    format: str = FORMAT
    format_version: int = FORMAT_VERSION

    def validate(self, where: str = "manifest") -> "Manifest":
        def bad(what: str):
            raise ManifestError(f"{where}: {what}; rebuild the engine with python -m hida_rt.build")
        if self.format != FORMAT:
            bad(f"format is {self.format!r}, not {FORMAT!r}")
        if self.format_version != FORMAT_VERSION:
            bad(f"format version {self.format_version} is not {FORMAT_VERSION}")
        if self.status not in STATUSES:
            bad(f"status {self.status!r} is not one of {', '.join(STATUSES)}")
        if self.precision not in PRECISIONS:
            bad(f"precision {self.precision!r} is not one of {', '.join(PRECISIONS)}")
        if not (isinstance(self.batch, dict) and {"min", "opt", "max"} <= set(self.batch)
                and all(isinstance(self.batch[k], int) for k in ("min", "opt", "max"))
                and 1 <= self.batch["min"] <= self.batch["opt"] <= self.batch["max"]):
            bad(f"batch profile {self.batch!r} is not 1 <= min <= opt <= max")
        for group in (self.inputs, self.outputs):
            if not group or not all(isinstance(t, dict) and {"name", "dtype", "shape"} <= set(t) for t in group):
                bad("inputs/outputs must list name, dtype and shape of each tensor")
        if self.status == "built" and not (self.tensorrt_version and self.compute_capability and self.engine_sha256):
            bad("a built engine's manifest must record TensorRT version, compute capability and engine SHA-256")
        return self

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, data: Any, where: str = "manifest") -> "Manifest":
        if not isinstance(data, dict):
            raise ManifestError(f"{where}: not a JSON object")
        names = {f.name for f in fields(cls)}
        required = {f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING}
        missing = sorted(required - set(data))
        if missing:
            raise ManifestError(f"{where}: missing field(s) {', '.join(missing)}; rebuild the engine with "
                                f"python -m hida_rt.build")
        try:
            manifest = cls(**{k: v for k, v in data.items() if k in names})
        except TypeError as e:
            raise ManifestError(f"{where}: {e}") from None
        return manifest.validate(where)

    def engine_path(self, manifest_file: Path) -> Path:
        return manifest_file.parent / self.engine

    def max_batch(self) -> int:
        return int(self.batch["max"])


def now_utc() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def write_manifest(manifest: Manifest, path: str | Path) -> Path:
    path = Path(path)
    manifest.validate(str(path))
    with atomic_path(path) as tmp:
        tmp.write_text(manifest.to_json())
    return path


def read_manifest(path: str | Path) -> Manifest:
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: no manifest beside the engine (hida_rt.build writes <engine>.json); "
                            f"rebuild with python -m hida_rt.build")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ManifestError(f"{path}: unreadable manifest ({type(e).__name__}: {str(e)[:80]}); "
                            f"rebuild the engine with python -m hida_rt.build") from None
    return Manifest.from_dict(data, str(path))


# ---------------------------------------------------------------- can this engine run here?

@dataclass(frozen=True)
class Environment:
    """What the running machine offers: None where it has nothing."""

    tensorrt_version: str | None
    gpu_name: str | None
    compute_capability: str | None   # "9.0"
    driver_cuda_version: str | None = None   # "12.8": the CUDA version of the installed driver


def check_runnable(manifest: Manifest, env: Environment, engine: str | Path = "engine") -> list[str]:
    """Raise EngineMismatch (one line) unless the engine can run here; returns warnings (lines) otherwise."""
    if manifest.status != "built":
        how = f"; finish the build on a machine with TensorRT and a GPU: {manifest.finish_command}" \
            if manifest.finish_command else ""
        raise EngineMismatch(f"{engine}: the engine was never built ({manifest.missing or 'no engine'}){how}")
    if env.tensorrt_version is None:
        raise EngineMismatch(f"{engine}: TensorRT is not installed here (the engine needs TensorRT "
                             f"{manifest.tensorrt_version}); pip install 'tensorrt=={manifest.tensorrt_version}'")
    if env.gpu_name is None:
        raise EngineMismatch(f"{engine}: no CUDA GPU here (the engine was built for {manifest.gpu_name}, "
                             f"compute capability {manifest.compute_capability})")
    if env.tensorrt_version != manifest.tensorrt_version:
        raise EngineMismatch(f"{engine}: built with TensorRT {manifest.tensorrt_version}, this is TensorRT "
                             f"{env.tensorrt_version} (engines run only under the version that built them); "
                             f"rebuild here with python -m hida_rt.build")
    if env.compute_capability != manifest.compute_capability:
        raise EngineMismatch(f"{engine}: built for {manifest.gpu_name} (compute capability "
                             f"{manifest.compute_capability}), this GPU is {env.gpu_name} (compute capability "
                             f"{env.compute_capability}); rebuild here with python -m hida_rt.build")
    from .plugins.ptx_isa import driver_refusal
    refusal = driver_refusal(manifest.ptx_isa, env.driver_cuda_version)
    if refusal:
        raise EngineMismatch(f"{engine}: {refusal}")
    warnings = []
    if env.gpu_name != manifest.gpu_name:
        warnings.append(f"{engine}: built on {manifest.gpu_name}, running on {env.gpu_name} (same compute "
                        f"capability {env.compute_capability}); timings may differ from the build's")
    return warnings


def check_engine_file(engine: str | Path, manifest: Manifest) -> None:
    """Raise EngineMismatch unless the plan's bytes are the ones the manifest describes."""
    from hida_rt.checkpoint import file_sha256
    if file_sha256(engine) != manifest.engine_sha256:
        raise EngineMismatch(f"{engine}: the plan's SHA-256 differs from its manifest's (a replaced or damaged "
                             f"file); rebuild with python -m hida_rt.build")
