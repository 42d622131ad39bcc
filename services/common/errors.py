"""One error hierarchy for every service.

Core code raises these; :mod:`services.common.http` maps them to HTTP responses in one place, every body shaped
``{"error": code, "message": text, "details": {...}}``. Core code never raises HTTP exceptions.
"""

from __future__ import annotations

from typing import Any, ClassVar


class ServiceError(Exception):
    """Base of all expected errors; ``code`` is the stable machine-readable name."""

    code: ClassVar[str] = "internal_error"
    status: ClassVar[int] = 500

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}

    def to_body(self) -> dict[str, Any]:
        """The wire form of this error."""
        return {"error": self.code, "message": self.message, "details": self.details}


class BadRequest(ServiceError):
    """The request is malformed (bad base64, unreadable body, ...)."""

    code = "bad_request"
    status = 400


class InvalidImage(ServiceError):
    """The bytes are not a decodable image: empty, truncated, corrupt or not an image at all."""

    code = "invalid_image"
    status = 400


class UnsupportedMediaType(ServiceError):
    """A real image or body in a format we do not accept."""

    code = "unsupported_media_type"
    status = 415


class PayloadTooLarge(ServiceError):
    """The request body exceeds the configured limit."""

    code = "payload_too_large"
    status = 413


class ImageTooLarge(ServiceError):
    """The decoded image has more pixels than allowed (decompression-bomb guard)."""

    code = "image_too_large"
    status = 413


class InvalidFields(ServiceError):
    """Well-formed request whose fields are missing, unknown or out of range."""

    code = "validation_error"
    status = 422


class Unauthorized(ServiceError):
    """Missing or wrong API key."""

    code = "unauthorized"
    status = 401


class Forbidden(ServiceError):
    """The operation is not allowed here (e.g. admin endpoints disabled)."""

    code = "forbidden"
    status = 403


class NotFound(ServiceError):
    """The named resource does not exist."""

    code = "not_found"
    status = 404


class Conflict(ServiceError):
    """The request conflicts with the current state (e.g. the object already exists)."""

    code = "conflict"
    status = 409


class RateLimited(ServiceError):
    """Too many requests from this client."""

    code = "rate_limited"
    status = 429


class Overloaded(ServiceError):
    """This service's bounded queue is full: refused at once (with ``details.retry_after_s``, sent as
    ``Retry-After``) rather than left to time out."""

    code = "overloaded"
    status = 503


class BackendError(ServiceError):
    """A backend answered with an error of its own."""

    code = "backend_error"
    status = 502


class BackendUnavailable(ServiceError):
    """A backend cannot be reached (refused, down, circuit open)."""

    code = "backend_unavailable"
    status = 503


class BackendTimeout(ServiceError):
    """A backend did not answer in time."""

    code = "backend_timeout"
    status = 504


class NotReady(ServiceError):
    """This service is still starting or has no usable state."""

    code = "not_ready"
    status = 503


class ConfigurationError(Exception):
    """Bad configuration found at start-up; the message says the fix."""
