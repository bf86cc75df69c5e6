"""Every error leaves with ``extensions.code`` and ``extensions.errorType``; internal ones are masked.

- ``AppError`` raised below: its code, type and message (the message is written for people).
- Syntax, validation and variable errors from graphql-core (no path): BAD_USER_INPUT.
- Anything else: INTERNAL_SERVER_ERROR with the request id. The log gets the exception type and
  where it happened, never its message (which may hold personal data) and never the token.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterator

from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import GraphQLError, GraphQLSyntaxError
from strawberry.extensions import SchemaExtension

from bloodbank.errors import AppError

log = logging.getLogger("bloodbank.api")


def _where(exc: BaseException) -> list[str]:
    frames = traceback.extract_tb(exc.__traceback__)
    return [f"{f.filename.rsplit('/', 2)[-1]}:{f.lineno}:{f.name}" for f in frames[-8:]]


def public_error(error: GraphQLError, request_id: str, operation: str | None = None) -> GraphQLError:
    """The error as a client may see it."""
    original = error.original_error
    while isinstance(original, GraphQLError) and original.original_error is not None:
        original = original.original_error  # graphql-core wraps errors in errors; find the cause
    if isinstance(original, GraphQLError):
        original = None  # only GraphQL's own errors: decided by where they happened, below
    if isinstance(original, AppError):
        ext: dict[str, object] = original.extensions()
        return GraphQLError(
            original.message, error.nodes, error.source, error.positions, error.path, extensions=ext
        )
    if error.extensions and error.extensions.get("code"):
        return error  # already public
    # No path: the request failed before any resolver ran (syntax, validation, a scalar that
    # could not parse the client's value, whose message is about that value).
    if error.path is None and (original is None or isinstance(original, ValueError | TypeError)):
        error_type = "MalformedQueryException" if isinstance(error, GraphQLSyntaxError) else "ValidationError"
        return GraphQLError(
            error.message,
            error.nodes,
            error.source,
            error.positions,
            extensions={"code": "BAD_USER_INPUT", "errorType": error_type},
        )
    cause = original if original is not None else error
    log.error(
        "internal error",
        extra={
            "request_id": request_id,
            "operation": operation,
            "path": ".".join(str(p) for p in error.path or ()),
            "exception": type(cause).__name__,
            "where": _where(cause),
        },
    )
    return GraphQLError(
        f"Internal server error. Quote request id {request_id} when reporting it.",
        error.nodes,
        error.source,
        error.positions,
        error.path,
        extensions={"code": "INTERNAL_SERVER_ERROR", "errorType": "InternalFailure", "requestId": request_id},
    )


class ErrorPolicy(SchemaExtension):
    """Refuses operations sent with bad credentials, then makes every error public-safe."""

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context.context
        auth_error = getattr(context, "auth_error", None)
        if auth_error is not None:
            # No resolver runs for a request whose token failed verification.
            error = GraphQLError(auth_error.message, original_error=auth_error)
            self.execution_context.result = GraphQLExecutionResult(data=None, errors=[error])
        yield

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        errors = getattr(result, "errors", None)
        if result is not None and errors:
            request_id = getattr(self.execution_context.context, "request_id", "-")
            name = self.execution_context.operation_name
            result.errors = [public_error(e, request_id, name) for e in errors]
