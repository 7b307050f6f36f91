"""User-facing errors: each prints as one line and exits non-zero (see hida_rt.cli)."""


def first_line(e: BaseException, limit: int = 160) -> str:
    """An exception's reason as one short line (its type name when the message is empty)."""
    text = str(getattr(e, "strerror", None) or e).strip()
    return (text.splitlines() or [type(e).__name__])[0][:limit] or type(e).__name__


class HidaError(Exception):
    """An error caused by the user's input or environment, reported without a traceback."""

    exit_code = 2


class CheckpointError(HidaError):
    """A weights file that is missing, unreadable, unsafe or of another network."""


class InputError(HidaError):
    """An image, video or argument that cannot be used as given."""


class BackendUnavailable(HidaError):
    """A backend that cannot run here (missing package, no GPU, ...)."""


class MissingDependency(HidaError):
    """An optional extra that is not installed."""


class ImageTooLarge(InputError):
    """An image (or request) over a size limit; refused before its pixels are decoded."""


class UnsupportedImage(InputError):
    """An image in a format the caller does not accept."""
