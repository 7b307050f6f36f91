"""AOTInductor packaging of the HIDA generator, for C++ (engines/cpp, `hida::open_aoti`).

The command line is `python -m hida_rt.export --format pt2` (export/__main__.py):

    hida-rt export --weights hida.ckpt -o hida_256.pt2 [--device cpu|cuda]     # the format follows the suffix
                             [--height 256 --width 256] [--batch 1 | --max-batch 8]

    from hida_rt.export.aoti import package_aoti
    summary = package_aoti("hida.ckpt", "hida_256.pt2")       # fixed batch 1, CPU
    print(summary.line())

The `.pt2` holds one compiled model ("model") with the weights inside its
shared library; LibTorch's `torch::inductor::AOTIModelPackageLoader` runs it,
no Python needed. Inputs photo (N x 3 x H x W), depth (N x 1 x H x W), style
(N x 3), output sketch (N x 1 x H x W), as every backend (docs/architecture.md).

Batch: fixed by default (`--batch N`, N = 1 unless given): the C++ class splits
larger batches and pads the last chunk. `--max-batch M` compiles a dynamic
batch 1..M instead, one call per M images, and takes longer to compile.

A CPU package is compiled with -march=native (its metadata AOTI_CPU_ISA says
which ISA, e.g. AVX512): run it on the same kind of CPU, or package on the
target machine. A CUDA package likewise targets the packaging GPU's architecture.

The package carries `hida.*` metadata (size, batch, device, weights SHA-256)
that the C++ loader reads to refuse a package it cannot feed.

Inputs must be contiguous: the compiled code indexes them with the example
inputs' strides and does not check. `hida_rt.images.photo_to_tensor` returns
a channels-last view (a permute), which gives a wrong sketch unless
`.contiguous()` is applied first; the C++ side always builds contiguous
tensors.
"""
from __future__ import annotations

import contextlib
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch

from hida_rt.checkpoint import file_sha256, load_generator
from hida_rt.cli import atomic_path
from hida_rt.errors import BackendUnavailable, HidaError, InputError, first_line
from hida_rt.model import check_size

# Bumped when the metadata the C++ loader reads changes meaning.
FORMAT_VERSION = "1"
INPUT_NAMES = ("photo", "depth", "style")
# Inductor settings for packaging. max_autotune off: on CPU it only benchmarks
# GEMM templates against ATen for minutes and the 2-core CI cannot afford it.
INDUCTOR_CONFIGS = {"max_autotune": False}


class PackagingError(HidaError):
    """torch.export or AOTInductor failed on the model."""


@dataclass(frozen=True)
class PackageSummary:
    path: Path
    device: str
    height: int
    width: int
    batch: str  # "N" (fixed) or "1..M" (dynamic)
    size_bytes: int
    seconds: float

    def line(self) -> str:
        return (f"wrote {self.path} (AOTInductor package, {self.device}, batch {self.batch}, "
                f"{self.height}x{self.width}, {self.size_bytes / 2**20:.0f} MiB, {self.seconds:.0f} s)")


def _check_args(output: Path, device: str, height: int, width: int, batch: int, max_batch: int | None) -> None:
    if output.suffix != ".pt2":
        raise InputError(f"{output}: an AOTInductor package must end in .pt2 (torch refuses other names)")
    check_size(height, width)
    if batch < 1:
        raise InputError(f"--batch must be at least 1, got {batch}")
    if max_batch is not None and max_batch < 2:
        raise InputError(f"--max-batch must be at least 2 (use --batch 1 for single images), got {max_batch}")
    if device not in ("cpu", "cuda"):
        raise InputError(f"--device must be cpu or cuda, got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise BackendUnavailable("--device cuda: no CUDA GPU visible to torch here; package for cpu, "
                                 "or run this on the machine (GPU architecture) that will run the package")


def _example_inputs(n: int, height: int, width: int, device: str) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    photo = torch.rand(n, 3, height, width, generator=g) * 2 - 1
    depth = torch.rand(n, 1, height, width, generator=g)
    style = torch.eye(3)[torch.arange(n) % 3]
    return tuple(t.to(device).contiguous() for t in (photo, depth, style))


def _say(progress: bool, text: str) -> None:
    if progress:
        print(text, file=sys.stderr, flush=True)


def package_aoti(weights: str | Path, output: str | Path, *, device: str = "cpu", height: int = 256,
                 width: int = 256, batch: int = 1, max_batch: int | None = None,
                 progress: bool = True) -> PackageSummary:
    """Compile the generator with AOTInductor into `output` (.pt2), replaced atomically.

    `batch` fixes N; `max_batch` (>= 2) makes N dynamic in 1..max_batch instead.
    """
    t0 = time.perf_counter()
    output, weights = Path(output), Path(weights)
    _check_args(output, device, height, width, batch, max_batch)
    _say(progress, f"[1/3] loading {weights}")
    model = load_generator(weights, device)
    # A dynamic dim must not be traced at size 1: export would specialise it to the constant 1.
    n = 2 if max_batch is not None else batch
    inputs = _example_inputs(n, height, width, device)
    dynamic_shapes = None
    if max_batch is not None:
        dim = torch.export.Dim("batch", min=1, max=max_batch)
        dynamic_shapes = {name: {0: dim} for name in INPUT_NAMES}
    _say(progress, "[2/3] tracing the graph (torch.export)")
    try:
        with _quiet_torch():
            exported = torch.export.export(model, inputs, dynamic_shapes=dynamic_shapes)
    except Exception as e:  # torch raises many types; the user gets the first line
        raise PackagingError(f"torch.export failed: {first_line(e, 200)}") from None
    metadata = {
        "hida.format_version": FORMAT_VERSION,
        "hida.height": str(height),
        "hida.width": str(width),
        "hida.batch": "dynamic" if max_batch is not None else str(batch),
        "hida.max_batch": str(max_batch if max_batch is not None else batch),
        "hida.device": device,
        "hida.inputs": ",".join(INPUT_NAMES),
        "hida.weights_sha256": file_sha256(weights),
        "hida.torch_version": torch.__version__,
    }
    _say(progress, f"[3/3] compiling with AOTInductor for {device} (the slow step: minutes)")
    configs = dict(INDUCTOR_CONFIGS, **{"aot_inductor.metadata": metadata})
    with atomic_path(output) as tmp:
        try:
            with _quiet_torch():
                torch._inductor.aoti_compile_and_package(exported, package_path=str(tmp), inductor_configs=configs)
        except Exception as e:
            raise PackagingError(f"AOTInductor compilation failed: {first_line(e, 200)}") from None
    batch_text = f"1..{max_batch}" if max_batch is not None else str(batch)
    return PackageSummary(output, device, height, width, batch_text, output.stat().st_size,
                          time.perf_counter() - t0)


@contextlib.contextmanager
def _quiet_torch() -> Iterator[None]:
    """torch's deprecation notes from inside export would interleave with the progress lines."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", UserWarning)
        yield

