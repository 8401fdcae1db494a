"""One error shape for the whole API: {"code", "message", "errors"?}.

`code` is a stable machine-readable value from ErrorCode. The handler also
marks the current transaction for rollback, so a failed request writes nothing.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response


class ErrorCode(StrEnum):
    VALIDATION_ERROR = "validation_error"
    PARSE_ERROR = "parse_error"
    NOT_AUTHENTICATED = "not_authenticated"
    AUTHENTICATION_FAILED = "authentication_failed"
    TOKEN_EXPIRED = "token_expired"
    PERMISSION_DENIED = "permission_denied"
    CSRF_FAILED = "csrf_failed"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    NOT_ACCEPTABLE = "not_acceptable"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    THROTTLED = "throttled"
    CONFLICT = "conflict"
    SERVER_ERROR = "server_error"


class ApiError(exceptions.APIException):
    """Raise from services or views for a domain error with a stable code."""

    status_code = status.HTTP_400_BAD_REQUEST

    def __init__(
        self,
        code: ErrorCode | str,
        message: str,
        *,
        status_code: int | None = None,
        errors: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail=message, code=str(code))
        self.error_code = str(code)
        self.message = message
        self.errors = errors
        if status_code is not None:
            self.status_code = status_code


_DRF_CODES: dict[type[exceptions.APIException], ErrorCode] = {
    exceptions.ValidationError: ErrorCode.VALIDATION_ERROR,
    exceptions.ParseError: ErrorCode.PARSE_ERROR,
    exceptions.NotAuthenticated: ErrorCode.NOT_AUTHENTICATED,
    exceptions.AuthenticationFailed: ErrorCode.AUTHENTICATION_FAILED,
    exceptions.PermissionDenied: ErrorCode.PERMISSION_DENIED,
    exceptions.NotFound: ErrorCode.NOT_FOUND,
    exceptions.MethodNotAllowed: ErrorCode.METHOD_NOT_ALLOWED,
    exceptions.NotAcceptable: ErrorCode.NOT_ACCEPTABLE,
    exceptions.UnsupportedMediaType: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
    exceptions.Throttled: ErrorCode.THROTTLED,
}


def error_body(code: ErrorCode | str, message: str, errors: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": str(code), "message": message}
    if errors:
        body["errors"] = errors
    return body


def _code_for(exc: exceptions.APIException) -> str:
    if isinstance(exc, ApiError):
        return exc.error_code
    detail_code = exc.get_codes() if not isinstance(exc, exceptions.ValidationError) else None
    # Authentication classes raise with a specific code (token_expired, csrf_failed).
    if isinstance(detail_code, str) and detail_code in ErrorCode._value2member_map_:
        return detail_code
    for klass in type(exc).__mro__:
        if klass in _DRF_CODES:
            return _DRF_CODES[klass]  # type: ignore[index]
    return ErrorCode.SERVER_ERROR


def _validation_message(errors: Any) -> str:
    if isinstance(errors, dict):
        field, messages = next(iter(errors.items()), (None, None))
        first = messages[0] if isinstance(messages, list) and messages else messages
        if isinstance(first, dict | list):
            first = "invalid value"
        if field in (None, "non_field_errors"):
            return str(first or "Invalid input.")
        return f"{field}: {first}"
    if isinstance(errors, list) and errors:
        return str(errors[0])
    return "Invalid input."


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if not isinstance(exc, exceptions.APIException):
        return None  # a bug: Django's 500 handling (and logging) takes over

    headers: dict[str, str] = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header  # type: ignore[attr-defined]
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))  # type: ignore[attr-defined]

    code = _code_for(exc)
    if isinstance(exc, ApiError):
        body = error_body(code, exc.message, exc.errors)
    elif isinstance(exc, exceptions.ValidationError):
        errors = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        body = error_body(code, _validation_message(errors), errors)
    else:
        body = error_body(code, str(exc.detail))

    from rest_framework.views import set_rollback  # not at import: rest_framework.views imports this module

    set_rollback()
    return Response(body, status=exc.status_code, headers=headers)


def json_not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(error_body(ErrorCode.NOT_FOUND, "Not found."), status=404)


def json_server_error(request: HttpRequest) -> JsonResponse:
    return JsonResponse(error_body(ErrorCode.SERVER_ERROR, "Server error."), status=500)
