"""Errors the service answers with, each one HTTP status and one line: {"error": "..."}.

The service core raises these (and hida_rt's own InputError & co.); the app
turns every one of them into its status and a JSON body (see app.error_response).
"""
from __future__ import annotations

from ..errors import (
    HidaError,
    ImageTooLarge,
    InputError,
    MissingDependency,
    UnsupportedImage,
)


class ServiceError(HidaError):
    status = 500

    def __init__(self, message: str, *, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.headers = headers or {}


class BadRequest(ServiceError):
    status = 400


class Unauthorized(ServiceError):
    status = 401

    def __init__(self, message: str = "missing or wrong API key: send Authorization: Bearer <key>"):
        super().__init__(message, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(ServiceError):
    status = 403


class RequestTimeout(ServiceError):
    """The request's head or body did not arrive in time (docs/serve.md, "Limits")."""

    status = 408


class NotFound(ServiceError):
    status = 404


class PayloadTooLarge(ServiceError):
    status = 413


class UnsupportedMediaType(ServiceError):
    status = 415


class NoFaceFound(ServiceError):
    status = 422


class UpgradeRequired(ServiceError):
    status = 426


class HeadersTooLarge(ServiceError):
    status = 431


class NotInstalled(ServiceError):
    status = 501


class Unavailable(ServiceError):
    """Overloaded, loading or stopping: try again later (Retry-After says when)."""

    status = 503

    def __init__(self, message: str, retry_after: float = 1.0):
        super().__init__(message, headers={"Retry-After": str(max(1, round(retry_after)))})


def status_of(e: BaseException) -> int:
    """The HTTP status an error is answered with (500: a bug, reported without its traceback)."""
    if isinstance(e, ServiceError):
        return e.status
    if isinstance(e, ImageTooLarge):
        return 413
    if isinstance(e, UnsupportedImage):
        return 415
    if isinstance(e, MissingDependency):
        return 501
    if isinstance(e, (InputError, HidaError)):
        return 400
    return 500
