"""Errors an operation raises; the web layer turns each into a 4xx with a clear message."""
from __future__ import annotations


class AppError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, fields: dict | None = None, **extra):
        super().__init__(message)
        self.message = message
        self.fields = fields or {}
        self.extra = extra

    def to_dict(self) -> dict:
        body = {"error": self.message, "code": self.code, "fields": self.fields}
        body.update(self.extra)
        return body


class ValidationFailed(AppError):
    """Bad input: ``fields`` maps each offending field (or row) to its message."""

    status = 422
    code = "validation_failed"

    def __init__(self, fields: dict, message: str = "Some fields are invalid."):
        super().__init__(message, fields)


class NotAuthenticated(AppError):
    status = 401
    code = "not_authenticated"


class PermissionDenied(AppError):
    status = 403
    code = "forbidden"


class NotFound(AppError):
    status = 404
    code = "not_found"


class Conflict(AppError):
    """The record changed since the client read it, or it already exists."""

    status = 409
    code = "conflict"


class Refused(AppError):
    """A business rule or safeguard refuses the act; the message says which and why."""

    status = 409
    code = "refused"

    def __init__(self, message: str, rule: str, **extra):
        super().__init__(message, rule=rule, **extra)
        self.rule = rule


class Busy(AppError):
    """The database gave no turn to write in time (a flood of writes): nothing was changed, and
    the same request may simply be sent again."""

    status = 503
    code = "busy"
    retry_after = 5

    def __init__(self, message: str = "The system is too busy to save this right now; nothing was saved. "
                                      "Try again in a few seconds."):
        super().__init__(message)


class SavedWithoutAnswer(AppError):
    """The change was saved, but the answer describing it could not be built: the client must
    look it up rather than send it again (which would save it twice)."""

    status = 500
    code = "saved_without_answer"
