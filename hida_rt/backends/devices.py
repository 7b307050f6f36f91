"""--device, read one way for every backend: None or "auto" (the backend picks), cpu, cuda, cuda:N."""
from __future__ import annotations

import torch

from ..errors import BackendUnavailable

KINDS = ("cpu", "cuda")
USE = "use cpu, cuda or cuda:N"


def parse_device(device: str | torch.device | None) -> torch.device | None:
    """The torch.device `device` names, or None for None/"auto".

    Raises BackendUnavailable (one line) for anything that is not a cpu or cuda device;
    whether a GPU is actually there is each backend's question.
    """
    if device is None or device == "auto":
        return None
    if isinstance(device, torch.device):
        parsed = device
    else:
        try:
            parsed = torch.device(device)
        except (RuntimeError, TypeError, ValueError):
            raise BackendUnavailable(f"--device {device!r} is not a device; {USE}") from None
    if parsed.type not in KINDS:
        raise BackendUnavailable(f"--device {device} is not supported; {USE}")
    return parsed

