"""A Triton Inference Server model repository for HIDA, from an engine or the portable ONNX.

    DIR/hida/config.pbtxt        platform, inputs/outputs (names, types, dims), max_batch_size, dynamic_batching
    DIR/hida/1/model.plan        the TensorRT engine (platform tensorrt_plan), or
    DIR/hida/1/model.onnx        the portable ONNX (platform onnxruntime_onnx)

    python -m hida_rt.export.triton_repo engines/hida_fp16.plan triton_models/
    python -m hida_rt.build --weights W --triton-repo triton_models/          (after building the engine)
    python -m hida_rt.export --weights W -o hida.onnx --triton-repo triton_models/

What the config says is read from the model, never assumed: for an ONNX
file, its graph inputs/outputs (element types, dims; a symbolic first dim is
the batch); for an engine, the manifest `<engine>.json` hida_rt.build wrote
beside it (the engine itself needs TensorRT to read), which must say
"built" and match the plan's SHA-256. A dynamic batch dimension becomes
`max_batch_size` (at most the engine's optimization-profile maximum) with
the batch left out of `dims`, and Triton's dynamic batcher is switched on.

The model file is copied, then the config written, each atomically: a
repository with a config has its model. An engine still runs only under
the TensorRT version that built it and on GPUs of its compute capability,
so serve it with a tritonserver release that ships that TensorRT; the
config's header comment records both.
"""
from __future__ import annotations

import argparse
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hida_rt import __version__
from hida_rt.cli import atomic_path, run_cli
from hida_rt.errors import InputError

DEFAULT_NAME = "hida"
DEFAULT_ONNX_MAX_BATCH = 8
DEFAULT_QUEUE_DELAY_US = 2000
VERSION = "1"  # the one model version a repository holds: DIR/NAME/1/
PLAN_SUFFIXES = (".plan", ".engine")
PLATFORMS = {"plan": ("tensorrt_plan", "model.plan", "KIND_GPU"),
             "onnx": ("onnxruntime_onnx", "model.onnx", "KIND_CPU")}
# Our dtype names (numpy's) -> Triton's model_config.proto DataType.
TRITON_TYPES = {"bool": "TYPE_BOOL", "uint8": "TYPE_UINT8", "int8": "TYPE_INT8", "int16": "TYPE_INT16",
                "int32": "TYPE_INT32", "int64": "TYPE_INT64", "float16": "TYPE_FP16", "bfloat16": "TYPE_BF16",
                "float32": "TYPE_FP32", "float64": "TYPE_FP64"}


@dataclass(frozen=True)
class Tensor:
    name: str
    dtype: str              # numpy name: float32, float16, ...
    shape: tuple[int, ...]  # -1 where dynamic; the first is the batch


@dataclass
class ModelInfo:
    kind: str               # "plan" or "onnx"
    inputs: list[Tensor]
    outputs: list[Tensor]
    max_batch: int | None   # the largest batch the model takes (an engine's profile max); None: unbounded
    notes: list[str] = field(default_factory=list)   # header comment lines of the config

    @property
    def batched(self) -> bool:
        return all(t.shape and t.shape[0] == -1 for t in self.inputs + self.outputs)


@dataclass(frozen=True)
class RepoSummary:
    model_dir: Path
    config: Path
    model_file: Path
    platform: str
    max_batch_size: int

    def line(self) -> str:
        return (f"wrote the Triton model repository {self.model_dir.parent}: {self.model_dir.name}/config.pbtxt "
                f"({self.platform}, max_batch_size {self.max_batch_size}) and {self.model_dir.name}/{VERSION}/"
                f"{self.model_file.name}")


def model_kind(path: Path) -> str:
    if path.suffix.lower() in PLAN_SUFFIXES:
        return "plan"
    if path.suffix.lower() == ".onnx":
        return "onnx"
    raise InputError(f"{path}: not a TensorRT engine ({', '.join(PLAN_SUFFIXES)}) or an ONNX file (.onnx)")


def onnx_info(path: Path) -> ModelInfo:
    """Inputs/outputs of an ONNX file, from its graph (external weights are not read)."""
    import onnx
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # DecodeError, OSError
        raise InputError(f"{path}: cannot read it as ONNX ({type(e).__name__}: {str(e)[:100]})") from None
    initializers = {i.name for i in model.graph.initializer}

    def tensor(value) -> Tensor:
        t = value.type.tensor_type
        try:
            dtype = onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name
        except Exception:
            raise InputError(f"{path}: tensor {value.name} has ONNX element type {t.elem_type}, which Triton "
                             f"has no type for") from None
        dims = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim)
        return Tensor(value.name, dtype, dims)

    inputs = [tensor(v) for v in model.graph.input if v.name not in initializers]
    outputs = [tensor(v) for v in model.graph.output]
    meta = {p.key: p.value for p in model.metadata_props}
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    notes = [f"Portable ONNX (opset {opset}; deformable convs as the standard DeformConv op): Triton's "
             f"onnxruntime backend must run DeformConv (onnxruntime 1.31 does on CPU)."]
    if "hida_rt.weights_sha256" in meta:
        notes.append(f"Exported from weights with SHA-256 {meta['hida_rt.weights_sha256']}.")
    return ModelInfo("onnx", inputs, outputs, None, notes)


def plan_info(path: Path) -> ModelInfo:
    """Inputs/outputs and batch profile of an engine, from the manifest beside it."""
    from .manifest import check_engine_file, manifest_path, read_manifest
    manifest = read_manifest(manifest_path(path))
    if manifest.status != "built":
        raise InputError(f"{path}: its manifest says the engine was never built ({manifest.missing or 'unbuilt'}); "
                         f"build it first: {manifest.finish_command or 'python -m hida_rt.build'}")
    if not path.is_file():
        raise InputError(f"{path}: no such engine file")
    check_engine_file(path, manifest)

    def tensors(group) -> list[Tensor]:
        return [Tensor(t["name"], str(t["dtype"]), tuple(int(d) for d in t["shape"])) for t in group]

    notes = [f"TensorRT engine ({manifest.precision}), built with TensorRT {manifest.tensorrt_version} for "
             f"{manifest.gpu_name} (compute capability {manifest.compute_capability}): serve it with a "
             f"tritonserver whose TensorRT is {manifest.tensorrt_version}, on a GPU of compute capability "
             f"{manifest.compute_capability}.",
             "The hida_rt plugins are AOT-compiled into the engine (TensorRT AOT plugins): hida_rt ships no "
             "plugin library to preload for it.",
             f"Optimization profile: batch {manifest.batch['min']}..{manifest.batch['max']} "
             f"(opt {manifest.batch['opt']}); weights SHA-256 {manifest.weights_sha256}."]
    return ModelInfo("plan", tensors(manifest.inputs), tensors(manifest.outputs), manifest.max_batch(), notes)


def network_info(height: int, width: int) -> ModelInfo:
    """What an ONNX export of the generator at height x width declares, without exporting: the export's own
    input names and trace inputs (batch made -1), and the output of the network run on PyTorch's meta
    device (shapes and types only: no memory, no arithmetic). Servers that speak the Open Inference
    Protocol (python -m hida_rt.serve) describe their model with it, as this repository would."""
    import torch

    from hida_rt.model import HIDAGenerator, check_size

    from .network_io import INPUT_NAMES, OUTPUT_NAME, trace_inputs

    check_size(height, width)
    # On the meta device: nothing is allocated in the server that calls this.
    with torch.device("meta"), torch.no_grad():
        inputs = trace_inputs(height, width)
        output = HIDAGenerator()(*inputs)

    def tensor(name: str, t: torch.Tensor) -> Tensor:
        return Tensor(name, str(t.dtype).removeprefix("torch."), (-1, *t.shape[1:]))

    return ModelInfo("onnx", [tensor(n, t) for n, t in zip(INPUT_NAMES, inputs, strict=True)],
                     [tensor(OUTPUT_NAME, output)], None)


def model_info(path: str | Path) -> ModelInfo:
    path = Path(path)
    kind = model_kind(path)
    if kind == "onnx" and not path.is_file():
        raise InputError(f"{path}: no such ONNX file")
    return onnx_info(path) if kind == "onnx" else plan_info(path)


def _triton_type(t: Tensor, where: str) -> str:
    if t.dtype not in TRITON_TYPES:
        raise InputError(f"{where}: tensor {t.name} is {t.dtype}, which Triton has no type for")
    return TRITON_TYPES[t.dtype]


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def config_text(info: ModelInfo, name: str, max_batch_size: int, queue_delay_us: int, instances: int,
                source: str) -> str:
    """config.pbtxt in protobuf text format (model_config.proto's ModelConfig)."""
    platform, filename, kind = PLATFORMS[info.kind]
    lines = ["# Triton Inference Server config of the HIDA generator (photo, depth, style -> sketch),",
             f"# written by hida_rt {__version__} from {source}.",
             *(f"# {n}" for n in info.notes),
             f"name: {_quote(name)}", f'platform: "{platform}"', f'default_model_filename: "{filename}"',
             f"max_batch_size: {max_batch_size}"]

    def block(field_name: str, tensors: list[Tensor]) -> None:
        entries = []
        for t in tensors:
            dims = t.shape[1:] if max_batch_size > 0 else t.shape
            entries.append("\n".join(["  {", f"    name: {_quote(t.name)}", f"    data_type: {_triton_type(t, source)}",
                                      f"    dims: [ {', '.join(str(d) for d in dims)} ]", "  }"]))
        lines.append(f"{field_name} [\n" + ",\n".join(entries) + "\n]")

    block("input", info.inputs)
    block("output", info.outputs)
    if max_batch_size > 0:
        lines.append(f"dynamic_batching {{\n  max_queue_delay_microseconds: {queue_delay_us}\n}}")
    lines.append(f"instance_group [\n  {{\n    count: {instances}\n    kind: {kind}\n  }}\n]")
    return "\n".join(lines) + "\n"


def check_settings(repo: Path, name: str, instances: int = 1, queue_delay_us: int = 0,
                   max_batch: int | None = None) -> None:
    """One-line InputError for repository settings that cannot work (before any slow work)."""
    if not name or "/" in name or name.startswith("."):
        raise InputError(f"Triton model name {name!r}: must be one folder name")
    if repo.exists() and not repo.is_dir():
        raise InputError(f"{repo}: exists and is not a folder; name a folder for the Triton model repository")
    if instances < 1:
        raise InputError("Triton model instances must be at least 1")
    if queue_delay_us < 0:
        raise InputError("the Triton dynamic batcher's queue delay must be >= 0 microseconds")
    if max_batch is not None and max_batch < 1:
        raise InputError("the Triton max_batch_size must be at least 1")


def write_repository(model_file: str | Path, repo: str | Path, *, name: str = DEFAULT_NAME,
                     max_batch: int | None = None, queue_delay_us: int = DEFAULT_QUEUE_DELAY_US,
                     instances: int = 1, info: ModelInfo | None = None) -> RepoSummary:
    """Write REPO/NAME/config.pbtxt and REPO/NAME/1/model.{plan,onnx} (a copy of `model_file`)."""
    model_file, repo = Path(model_file), Path(repo)
    check_settings(repo, name, instances, queue_delay_us, max_batch)
    info = info or model_info(model_file)
    if info.batched:
        limit = info.max_batch
        size = max_batch if max_batch is not None else (limit or DEFAULT_ONNX_MAX_BATCH)
        if limit is not None and size > limit:
            raise InputError(f"max_batch_size {size} exceeds the engine's optimization profile (batch 1..{limit}); "
                             f"rebuild with a larger --max-batch or ask for at most {limit}")
    else:
        if max_batch is not None:
            raise InputError(f"{model_file}: a fixed batch size; Triton's max_batch_size must stay 0 for it")
        size = 0
    platform, filename, _ = PLATFORMS[info.kind]
    text = config_text(info, name, size, queue_delay_us, instances, model_file.name)
    model_dir = repo / name
    target = model_dir / VERSION / filename
    if model_file.resolve() != target.resolve():
        with atomic_path(target) as tmp:
            shutil.copyfile(model_file, tmp)
    for other in {f for _, f, _ in PLATFORMS.values()} - {filename}:
        stale = model_dir / VERSION / other   # a previous repository of the other kind would confuse readers
        if stale.is_file():
            stale.unlink()
    config = model_dir / "config.pbtxt"
    with atomic_path(config) as tmp:
        tmp.write_text(text)
    return RepoSummary(model_dir, config, target, platform, size)


def add_triton_options(p, with_max_batch: bool = False) -> None:
    """--triton-repo DIR and its settings, for the build and export command lines."""
    g = p.add_argument_group("Triton Inference Server repository")
    g.add_argument("--triton-repo", default=None, metavar="DIR",
                   help="also write a Triton model repository: DIR/NAME/config.pbtxt and DIR/NAME/1/model.plan "
                        "(engine) or model.onnx (ONNX)")
    g.add_argument("--triton-name", default=DEFAULT_NAME, help=f"model name in the repository (default {DEFAULT_NAME})")
    if with_max_batch:
        g.add_argument("--triton-max-batch", type=int, default=None,
                       help="Triton max_batch_size (default: the engine profile's maximum; ONNX: "
                            f"{DEFAULT_ONNX_MAX_BATCH})")
    g.add_argument("--triton-queue-delay-us", type=int, default=DEFAULT_QUEUE_DELAY_US,
                   help=f"dynamic batcher: how long a request may wait for others (default {DEFAULT_QUEUE_DELAY_US})")
    g.add_argument("--triton-instances", type=int, default=1, help="model instances Triton runs (default 1)")


def check_triton_args(args, profile_max: int | None = None) -> None:
    """Refuse, before the slow part, --triton-* settings that would be ignored or cannot be written."""
    defaults = {"triton_name": DEFAULT_NAME, "triton_max_batch": None,
                "triton_queue_delay_us": DEFAULT_QUEUE_DELAY_US, "triton_instances": 1}
    given = [f"--{k.replace('_', '-')}" for k, v in defaults.items() if getattr(args, k, v) != v]
    if args.triton_repo is None:
        if given:
            raise InputError(f"{given[0]} applies only with --triton-repo DIR")
        return
    max_batch = getattr(args, "triton_max_batch", None)
    check_settings(Path(args.triton_repo), args.triton_name, args.triton_instances, args.triton_queue_delay_us,
                   max_batch)
    if max_batch is not None and profile_max is not None and max_batch > profile_max:
        raise InputError(f"--triton-max-batch {max_batch} exceeds the engine's --max-batch {profile_max}")


def repository_from_args(model_file: str | Path, args) -> RepoSummary:
    """write_repository with the options of add_triton_options."""
    return write_repository(model_file, args.triton_repo, name=args.triton_name,
                            max_batch=getattr(args, "triton_max_batch", None),
                            queue_delay_us=args.triton_queue_delay_us, instances=args.triton_instances)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m hida_rt.export.triton_repo",
        description="Write a Triton Inference Server model repository for a HIDA TensorRT engine (with its "
                    "manifest <engine>.json beside it) or portable ONNX file.",
        epilog="Then: docker run --gpus all --rm -p 8000:8000 -p 8001:8001 -v $PWD/DIR:/models "
               "nvcr.io/nvidia/tritonserver:<release>-py3 tritonserver --model-repository=/models "
               "(pick the release whose TensorRT built the engine)")
    p.add_argument("model", metavar="MODEL", help="engine (.plan) or ONNX (.onnx) file")
    p.add_argument("repo", metavar="DIR", help="model repository folder (created if missing)")
    p.add_argument("--name", default=DEFAULT_NAME, help=f"model name (default {DEFAULT_NAME})")
    p.add_argument("--max-batch", type=int, default=None,
                   help=f"max_batch_size (default: the engine profile's maximum; ONNX: {DEFAULT_ONNX_MAX_BATCH})")
    p.add_argument("--queue-delay-us", type=int, default=DEFAULT_QUEUE_DELAY_US,
                   help=f"dynamic batcher queue delay in microseconds (default {DEFAULT_QUEUE_DELAY_US})")
    p.add_argument("--instances", type=int, default=1, help="model instances (default 1)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    print(write_repository(args.model, args.repo, name=args.name, max_batch=args.max_batch,
                           queue_delay_us=args.queue_delay_us, instances=args.instances).line())
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main, prog="hida_rt.export.triton_repo"))
