"""Errors a client can cause, each with the code and AppSync-style type clients see.

Raised anywhere below the schema; the schema's error extension turns them into
GraphQL errors with ``extensions.code`` and ``extensions.errorType``. Anything
that is not an ``AppError`` is an internal error and is masked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One invalid input field: its path as the client spelled it, and what to do."""

    field: str
    message: str


class AppError(Exception):
    code: ClassVar[str] = "INTERNAL_SERVER_ERROR"
    error_type: ClassVar[str] = "InternalFailure"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def extensions(self) -> dict[str, object]:
        return {"code": self.code, "errorType": self.error_type}


class Unauthenticated(AppError):
    code = "UNAUTHENTICATED"
    error_type = "UnauthorizedException"


class Forbidden(AppError):
    code = "FORBIDDEN"
    error_type = "Unauthorized"


class BadUserInput(AppError):
    code = "BAD_USER_INPUT"
    error_type = "ValidationError"

    def __init__(self, message: str, problems: Sequence[FieldProblem] = ()) -> None:
        super().__init__(message)
        self.problems = tuple(problems)

    @classmethod
    def of(cls, problems: Sequence[FieldProblem]) -> BadUserInput:
        if len(problems) == 1:
            return cls(f"{problems[0].field}: {problems[0].message}", problems)
        return cls(f"{len(problems)} fields are invalid: see extensions.fields", problems)

    def extensions(self) -> dict[str, object]:
        ext = super().extensions()
        if self.problems:
            ext["fields"] = [{"field": p.field, "message": p.message} for p in self.problems]
        return ext


class NotEligible(BadUserInput):
    """The donor may not donate now; ``reasons`` say why, ``next_eligible_at`` from when (if known)."""

    error_type = "DonorNotEligible"

    def __init__(self, message: str, reasons: Sequence[str], next_eligible_at: str | None) -> None:
        super().__init__(message)
        self.reasons = tuple(reasons)
        self.next_eligible_at = next_eligible_at

    def extensions(self) -> dict[str, object]:
        return {
            **super().extensions(),
            "reasons": list(self.reasons),
            "nextEligibleAt": self.next_eligible_at,
        }


class NotFound(AppError):
    code = "NOT_FOUND"
    error_type = "NotFoundException"


class Conflict(AppError):
    code = "CONFLICT"
    error_type = "ConditionalCheckFailedException"


class RateLimited(AppError):
    code = "RATE_LIMITED"
    error_type = "ThrottlingException"


class DependencyUnavailable(Exception):
    """A backing service (database, identity provider) could not be reached.

    Not a client's fault: shown as an internal error, logged with its cause.
    """


class ServiceUnavailable(AppError):
    """A dependency needed to answer is down; the client may retry. Shown with the request id."""

    code = "INTERNAL_SERVER_ERROR"
    error_type = "ServiceUnavailable"

    def __init__(self, message: str, request_id: str) -> None:
        super().__init__(message)
        self.request_id = request_id

    def extensions(self) -> dict[str, object]:
        return {**super().extensions(), "requestId": self.request_id}


class StaleWrite(Exception):
    """A transaction was refused because these named items were not as read; nothing was written.

    Names: ``unit <id>``, ``request``, ``tests``, ``idempotency``, ``site``.
    """

    def __init__(self, failed: set[str]) -> None:
        super().__init__(", ".join(sorted(failed)))
        self.failed = failed
