"""Portable ONNX export of the HIDA generator (level L1 of docs/proof.md).

    from hida_rt.export.onnx_export import export_onnx, build_onnx_model

    summary = export_onnx("hida.ckpt", "hida_256.onnx", height=256, width=256, opset=19)
    print(summary.line())          # parameters, size, opset, ...
    model = build_onnx_model("hida.ckpt")          # the same graph as an onnx.ModelProto, in memory
    model = onnx_model_from_generator(generator)   # from an already loaded HIDAGenerator

The graph (checked with `onnx.checker.check_model(full_check=True)` and strict
shape inference before it is returned):

- inputs `photo` (N x 3 x H x W, [-1, 1]), `depth` (N x 1 x H x W, [0, 1]),
  `style` (N x 3, generator channel order); output `sketch` (N x 1 x H x W).
  N is dynamic (`batch`); H and W are fixed at export, multiples of 256.
- opset >= 19 (19 and 20 are what torch's TorchScript exporter writes), IR
  version >= 9 (what onnxruntime needs for opset 19).
- the DOG layers' deformable convs are standard `DeformConv` nodes, inputs
  (X, W, offset, B, mask), offset_group 2, named `/up0/dcn/DeformConv` and
  `/up1/dcn/DeformConv` (see onnx_deform).
- node names follow module scopes (`/up3/fc3/Conv`, `/down4/model/model.2/
  InstanceNormalization`), so a graph pass finds a layer's ops by prefix.
- initializers are exactly the weights inference reads, under their
  state-dict names (`up3.fc3.weight`, `up3.p1`); constant folding is on, and
  its only new tensors are each MetaACON's p1 - p2 (same element count as
  the p1 it replaces), named `<reading node>/folded_<input index>`
  (`/up3/metaAcon/Mul/folded_0`). So the initializer element count equals
  the eager inference model's parameter count.
  Fixed tensors the ops need (shape vectors, Resize scales,
  InstanceNormalization's identity scale/bias) are Constant nodes.
- `metadata_props`: hida_rt.height, hida_rt.width, hida_rt.weights_sha256
  (when exported from a file), hida_rt.version, hida_rt.export_format.

Export goes through the TorchScript exporter (`dynamo=False`): the dynamo
exporter failed on DeformConv at opset 19 with torch 2.13 (docs/architecture.md).
"""
from __future__ import annotations

import io
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch

from hida_rt import __version__ as HIDA_RT_VERSION
from hida_rt.checkpoint import file_sha256, load_generator
from hida_rt.cli import atomic_path, check_writable
from hida_rt.errors import InputError
from hida_rt.model import HIDAGenerator, check_size

from . import onnx_graph
from .network_io import INPUT_NAMES, OUTPUT_NAME, trace_inputs
from .onnx_deform import MIN_OPSET, deform_conv_as_onnx_op

DEFAULT_OPSET = MIN_OPSET
# The newest opset torch's TorchScript exporter writes (torch.onnx._constants).
MAX_OPSET = 20
BATCH_DIM = "batch"
META_PREFIX = "hida_rt."
# Bump when a change here alters the exported graph: caches (onnx_cache) built by older code are rebuilt.
EXPORT_FORMAT_VERSION = 1


@dataclass(frozen=True)
class ExportSummary:
    """What an export produced; `line()` is the one-line report the CLI prints."""

    path: Path | None
    height: int
    width: int
    opset: int
    ir_version: int
    parameters: int
    file_bytes: int
    nodes: int
    deform_convs: int
    weights_sha256: str | None
    seconds: float

    def line(self) -> str:
        where = f"wrote {self.path}" if self.path else "built ONNX model"
        return (f"{where}: {self.parameters / 1e6:.2f} M parameters, {self.file_bytes / 1e6:.1f} MB, "
                f"opset {self.opset} (IR {self.ir_version}), {self.height}x{self.width}, dynamic batch, "
                f"{self.nodes} nodes incl. {self.deform_convs} DeformConv ({self.seconds:.1f} s)")


class _Steps:
    """Numbered progress lines on stderr (stdout stays free for the summary)."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.enabled, self.done = total, enabled, 0

    def __call__(self, what: str) -> None:
        self.done += 1
        if self.enabled:
            print(f"  [{self.done}/{self.total}] {what}", file=sys.stderr, flush=True)


def check_opset(opset: int) -> None:
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise InputError(f"--opset {opset} is not supported: DeformConv needs opset >= {MIN_OPSET} and torch's "
                         f"TorchScript exporter writes at most {MAX_OPSET}; use {DEFAULT_OPSET}")


def check_settings(height: int, width: int, opset: int = DEFAULT_OPSET) -> None:
    """InputError (one line) unless an export at height x width with `opset` can be made.

    Each public entry point below checks once, before any slow work; the private
    functions they share trust their caller.
    """
    check_size(height, width)
    check_opset(opset)


def _torch_export(model: HIDAGenerator, height: int, width: int, opset: int) -> onnx.ModelProto:
    buf = io.BytesIO()
    with deform_conv_as_onnx_op(model), torch.no_grad(), warnings.catch_warnings():
        # The legacy-exporter deprecation note and the InstanceNorm "train=True" note (IN has no
        # running stats, so train and eval compute the same) would break the one-line output.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, trace_inputs(height, width), buf, dynamo=False, opset_version=opset,
            input_names=list(INPUT_NAMES), output_names=[OUTPUT_NAME],
            dynamic_axes={name: {0: BATCH_DIM} for name in (*INPUT_NAMES, OUTPUT_NAME)},
            do_constant_folding=True, export_params=True,
            # True only to skip torch's initializer de-duplication; onnx_graph moves them back out.
            keep_initializers_as_inputs=True)
    return onnx.load_from_string(buf.getvalue())


def _tidy(model: onnx.ModelProto, parameters: dict[str, np.ndarray]) -> onnx.ModelProto:
    onnx_graph.drop_initializer_inputs(model)
    onnx_graph.remove_noop_casts(model)
    onnx_graph.remove_dead_code(model)
    onnx_graph.name_folded_initializers(model, parameters)
    # Store the inferred shapes: graph passes (onnx-graphsurgeon) read them.
    onnx_graph.infer_value_info(model, strict=True)
    return model


def verify_model(model: onnx.ModelProto) -> None:
    """The check every exported model passes: the full checker, which includes strict shape inference."""
    onnx.checker.check_model(model, full_check=True)


def onnx_model_from_generator(model: HIDAGenerator, height: int = 256, width: int = 256,
                              opset: int = DEFAULT_OPSET, weights_sha256: str | None = None,
                              progress: bool = False) -> onnx.ModelProto:
    """Export a loaded (eval-mode, FP32, CPU) generator to a checked, tidy ONNX ModelProto."""
    check_settings(height, width, opset)
    return _from_generator(model, height, width, opset, weights_sha256, _Steps(3, progress))


def _from_generator(model: HIDAGenerator, height: int, width: int, opset: int, weights_sha256: str | None,
                    steps: _Steps) -> onnx.ModelProto:
    first = next(model.parameters())
    if first.device.type != "cpu" or first.dtype != torch.float32:
        raise ValueError(f"export a float32 CPU generator (got {first.dtype} on {first.device}); "
                         f"use model.float().cpu()")
    model = model.eval()
    steps(f"tracing and converting to ONNX (opset {opset}, {height}x{width})")
    proto = _torch_export(model, height, width, opset)
    steps("tidying the graph (dead weights, no-op casts, names)")
    proto = _tidy(proto, {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()})
    proto.graph.name = "hida_generator"
    proto.doc_string = ("HIDA generator: photo, depth, style -> sketch; exported by hida_rt "
                        "(export/onnx_export.py)")
    meta = {"height": str(height), "width": str(width), "version": HIDA_RT_VERSION,
            "export_format": str(EXPORT_FORMAT_VERSION)}
    if weights_sha256:
        meta["weights_sha256"] = weights_sha256
    onnx.helper.set_model_props(proto, {META_PREFIX + k: v for k, v in meta.items()})
    steps("checking (onnx.checker full_check, strict shape inference)")
    verify_model(proto)
    return proto


def build_onnx_model(weights: str | Path, height: int = 256, width: int = 256, opset: int = DEFAULT_OPSET,
                     progress: bool = False) -> onnx.ModelProto:
    """Checkpoint file -> checked ONNX ModelProto (in memory, nothing written)."""
    check_settings(height, width, opset)
    return _from_weights(weights, height, width, opset, _Steps(4, progress))


def _from_weights(weights: str | Path, height: int, width: int, opset: int, steps: _Steps) -> onnx.ModelProto:
    generator = load_generator(weights, "cpu")
    # Reported after the fact, so a bad checkpoint prints only its one error line.
    steps(f"loaded {weights} ({sum(p.numel() for p in generator.parameters()) / 1e6:.2f} M parameters used)")
    return _from_generator(generator, height, width, opset, file_sha256(weights), steps)


def model_metadata(model: onnx.ModelProto) -> dict[str, str]:
    """The hida_rt.* metadata_props of an exported model, prefix stripped."""
    return {p.key[len(META_PREFIX):]: p.value for p in model.metadata_props if p.key.startswith(META_PREFIX)}


def summarize(model: onnx.ModelProto, path: Path | None, seconds: float) -> ExportSummary:
    meta = model_metadata(model)
    return ExportSummary(
        path=path, height=int(meta["height"]), width=int(meta["width"]),
        opset=next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
        ir_version=model.ir_version, parameters=onnx_graph.initializer_parameter_count(model),
        file_bytes=path.stat().st_size if path else model.ByteSize(), nodes=len(model.graph.node),
        deform_convs=sum(n.op_type == "DeformConv" for n in model.graph.node),
        weights_sha256=meta.get("weights_sha256"), seconds=seconds)


def save_model(model: onnx.ModelProto, path: str | Path) -> Path:
    """Write atomically (no half-written file on failure), one self-contained file (< 2 GB)."""
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            onnx.save_model(model, str(tmp))
    except OSError as e:
        raise InputError(f"{path}: cannot write the ONNX file ({e.strerror or e}); choose another -o") from None
    return path


def export_onnx(weights: str | Path, path: str | Path, height: int = 256, width: int = 256,
                opset: int = DEFAULT_OPSET, progress: bool = True) -> ExportSummary:
    """Checkpoint file -> ONNX file at `path`; returns what was written."""
    check_settings(height, width, opset)
    return _export_file(weights, Path(path), height, width, opset, progress)


def _export_file(weights: str | Path, path: Path, height: int, width: int, opset: int,
                 progress: bool) -> ExportSummary:
    """export_onnx for a caller that has checked the settings (export_onnx, onnx_cache.cached_onnx)."""
    t0 = time.perf_counter()
    check_writable(path)  # before the slow export, not after it
    model = _from_weights(weights, height, width, opset, _Steps(4, progress))
    if progress:
        print(f"  writing {path}", file=sys.stderr, flush=True)
    save_model(model, path)
    return summarize(model, path, time.perf_counter() - t0)

