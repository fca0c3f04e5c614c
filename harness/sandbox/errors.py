"""The errors the sandbox answers with, independent of the API format that renders them.

::

    ApiError                  an HTTP error answered in the caller's API format
     ├── InvalidRequest       400: unparsable JSON, missing or mistyped fields
     ├── Unauthenticated      401: neither ``x-api-key`` nor ``Authorization: Bearer``
     ├── NotFound             404: no sandbox endpoint ends the path
     ├── MethodNotAllowed     405: a known endpoint with the wrong method
     └── InjectedFault        a status chosen by a fault rate or a ``[sandbox:status=N]``

The pure request readers raise these; ``formats.ProviderFormat.error_body`` renders each one
as the Anthropic or OpenAI error envelope, in one place.
"""

from __future__ import annotations

__all__ = [
    "ApiError",
    "InjectedFault",
    "InvalidRequest",
    "MethodNotAllowed",
    "NotFound",
    "Unauthenticated",
]


class ApiError(Exception):
    """An error answered with ``status`` and the format's error body."""

    status = 500

    def __init__(
        self,
        message: str | None = None,
        *,
        param: str | None = None,
        code: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message or "")
        # None lets the format pick its own wording for the status (like the real APIs').
        self.message = message
        self.param = param
        self.code = code
        if status is not None:
            self.status = status


class InvalidRequest(ApiError):
    """The body is not JSON or does not have the fields the API requires."""

    status = 400


class Unauthenticated(ApiError):
    """No API key was sent."""

    status = 401


class NotFound(ApiError):
    """The path ends in no endpoint the sandbox serves."""

    status = 404


class MethodNotAllowed(ApiError):
    """The path is known, the method is not."""

    status = 405


class InjectedFault(ApiError):
    """A failure the sandbox was told to produce (rate-limit, overload, server error)."""

    def __init__(self, status: int) -> None:
        super().__init__(status=status)
