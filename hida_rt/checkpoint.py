"""Reading HIDA weights: a Lightning .ckpt or a plain generator state dict.

Files are opened with `weights_only=True` always: a checkpoint is data, and a
pickle that needs code to load is refused, never executed.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import pickletools
import warnings
from pathlib import Path

import torch

from .errors import CheckpointError, first_line
from .model import HIDAGenerator, inference_shapes

LIGHTNING_PREFIX = "Generator."
# How many offending keys an error names before "...".
NAMED_KEYS = 3
RANDOM_HINT = "make a random test checkpoint with: python -m hida_rt.random_weights -o hida_random.ckpt"


# Pickle opcodes that import or call: a file using them needs code to load.
CODE_OPCODES = {"GLOBAL", "STACK_GLOBAL", "INST", "OBJ", "REDUCE", "NEWOBJ", "NEWOBJ_EX", "BUILD"}


def _needs_code(path: Path, message: str) -> bool:
    """Tell a pickle that needs code (refused for safety) from a file that is no pickle at all.

    torch reports both as "Weights only load failed"; pickletools parses the
    opcodes of a raw pickle without running any of them.
    """
    if "Unsupported global" in message:
        return True
    try:
        with open(path, "rb") as f:
            if f.read(1) != b"\x80":  # every pickle of protocol >= 2 starts with PROTO
                return False
            f.seek(0)
            return any(op.name in CODE_OPCODES for op, _, _ in pickletools.genops(f))
    except Exception:  # malformed opcode stream: not a pickle we could classify
        return False


def check_weights_file(path: str | Path) -> Path:
    """`path` as a Path, or CheckpointError (one line) unless it is a file: the check before slow work."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such file (pass --weights with the HIDA checkpoint, or {RANDOM_HINT})")
    if path.is_dir():
        raise CheckpointError(f"{path}: is a directory, expected a .ckpt/.pth checkpoint file")
    return path


def _read(path: Path) -> object:
    check_weights_file(path)
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: the file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's pickle-protocol notes would break the one-line contract
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if _needs_code(path, str(e)):
            raise CheckpointError(
                f"{path}: refusing to load: the file needs arbitrary code to unpickle "
                f"(weights_only=True failed); re-save just the tensors with torch.save(model.state_dict())"
            ) from None
        raise CheckpointError(f"{path}: not a PyTorch checkpoint (unpickling failed)") from None
    except Exception as e:  # untrusted bytes can trip any error inside the unpickler
        if isinstance(e, (KeyError, IndexError, TypeError, AttributeError)):
            # the unpickler's internals (e.g. KeyError(101)) mean nothing to a user
            raise CheckpointError(f"{path}: not a PyTorch checkpoint") from None
        reason = first_line(e, 200).split(". ")[0][:120]
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint, truncated or corrupt ({reason})") from None


def generator_state(obj: object, path: Path | str = "checkpoint") -> dict[str, torch.Tensor]:
    """The generator tensors of a loaded checkpoint object, keys without prefix.

    Accepts Lightning's {"state_dict": {"Generator.*": ..., other keys}}, a bare
    dict with "Generator." keys, or a plain generator state dict.
    """
    sd = obj.get("state_dict") if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict) else obj
    if not isinstance(sd, dict):
        raise CheckpointError(f"{path}: holds a {type(obj).__name__}, not a state dict")
    tensors = {k: v for k, v in sd.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
    if any(k.startswith(LIGHTNING_PREFIX) for k in tensors):
        tensors = {k[len(LIGHTNING_PREFIX):]: v for k, v in tensors.items() if k.startswith(LIGHTNING_PREFIX)}
    elif tensors and all(k.startswith("module.") for k in tensors):
        tensors = {k[len("module."):]: v for k, v in tensors.items()}  # saved from DataParallel
    return tensors


def check_generator_state(sd: dict[str, torch.Tensor], path: Path | str = "checkpoint") -> dict[str, torch.Tensor]:
    """The tensors inference uses, validated (present, right shape, finite floats), as float32."""
    shapes = inference_shapes()
    missing = [k for k in shapes if k not in sd]
    misshaped = [f"{k} {tuple(sd[k].shape)} != {tuple(s)}" for k, s in shapes.items()
                 if k in sd and sd[k].shape != s]
    if missing or misshaped:
        parts = []
        if missing:
            more = ", ..." if len(missing) > NAMED_KEYS else ""
            parts.append(f"{len(missing)} of {len(shapes)} required tensors missing "
                         f"({', '.join(missing[:NAMED_KEYS])}{more})")
        if misshaped:
            more = ", ..." if len(misshaped) > NAMED_KEYS else ""
            parts.append(f"{len(misshaped)} mis-shaped ({', '.join(misshaped[:NAMED_KEYS])}{more})")
        raise CheckpointError(f"{path}: not a HIDA generator checkpoint: {'; '.join(parts)}")
    out = {}
    for k in shapes:
        t = sd[k]
        if not t.is_floating_point():
            raise CheckpointError(f"{path}: tensor {k} has dtype {t.dtype}, expected floating point")
        t = t.float()
        if not torch.isfinite(t).all():
            raise CheckpointError(f"{path}: tensor {k} contains NaN or Inf; the checkpoint is corrupt")
        out[k] = t
    return out


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read and validate a checkpoint; returns exactly the inference tensors (float32, CPU)."""
    path = Path(path)
    return check_generator_state(generator_state(_read(path), path), path)


def load_generator(path: str | Path, device: str | torch.device = "cpu") -> HIDAGenerator:
    """The eager generator with the checkpoint's weights, in eval mode, without gradients."""
    model = HIDAGenerator(full=False)
    model.load_state_dict(load_state_dict(path), strict=True)
    model.eval().requires_grad_(False)
    return model.to(device)


# file_sha256's results by (file, size, mtime): a run asks for one file's hash several times (the ONNX
# cache's name, the check that an ONNX matches its weights), and hashing a 400 MB file takes a second.
_hashes: dict[tuple, str] = {}


def file_sha256(path: str | Path) -> str:
    st = os.stat(path)
    key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    if key not in _hashes:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _hashes[key] = h.hexdigest()
    return _hashes[key]
