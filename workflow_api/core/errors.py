"""One error shape for the whole API: {"code", "message", "errors"?}.

`code` is a stable machine-readable value from ErrorCode (or a code given
where the error is raised, e.g. `ApiError("invalid_transition", ...)`). Like
DRF's own handler, it marks a view's transaction for rollback when views run
in one (ATOMIC_REQUESTS); otherwise each service's own `transaction.atomic`
already undid its writes when it raised.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.settings import api_settings

# The challenge of every 401 (RFC 9110 §11.6.1 requires one); JWTAuthentication sends the same.
WWW_AUTHENTICATE = 'Bearer realm="api"'
API_PREFIX = "/api/"


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
    # Domain codes named by the API contract (api.md).
    NOTES_REQUIRED = "notes_required"
    INVALID_TRANSITION = "invalid_transition"
    NOT_ASSIGNED = "not_assigned"
    NO_ASSIGNEE = "no_assignee"
    TASK_MOVED = "task_moved"
    # Workflow designer.
    WORKFLOW_INVALID = "workflow_invalid"
    EDIT_CONFLICT = "edit_conflict"
    WORKFLOW_IN_USE = "workflow_in_use"
    INVALID_STATE = "invalid_state"


class ApiError(exceptions.APIException):
    """Raise from services or views for a domain error with a stable code."""

    status_code: int = status.HTTP_400_BAD_REQUEST

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
    # A code given where the error is raised (token_expired, csrf_failed, a
    # subclass's default_code) is kept; APIException's generic "error" is not a code.
    if isinstance(detail_code, str) and detail_code != exceptions.APIException.default_code:
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
        if field in (None, api_settings.NON_FIELD_ERRORS_KEY):
            return str(first or "Invalid input.")
        return f"{field}: {first}"
    if isinstance(errors, list) and errors:
        return str(errors[0])
    return "Invalid input."


def _as_drf_validation_error(exc: DjangoValidationError) -> exceptions.ValidationError:
    """A model's full_clean() error, keyed by field like a serializer's."""
    if hasattr(exc, "error_dict"):
        detail: Any = {
            (api_settings.NON_FIELD_ERRORS_KEY if key == "__all__" else key): value
            for key, value in exc.message_dict.items()
        }
    else:
        detail = {api_settings.NON_FIELD_ERRORS_KEY: exc.messages}
    return exceptions.ValidationError(detail)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's EXCEPTION_HANDLER: every API error in one shape, and the transaction rolled back.

    Anything that is not an API error (a bug) is left to Django, which logs it
    and answers 500 through `json_server_error`.
    """
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, DjangoValidationError):
        exc = _as_drf_validation_error(exc)
    if not isinstance(exc, exceptions.APIException):
        return None

    headers: dict[str, str] = {}
    auth_header = getattr(exc, "auth_header", None)
    if auth_header:
        headers["WWW-Authenticate"] = auth_header
    elif exc.status_code == status.HTTP_401_UNAUTHORIZED:
        # A 401 raised outside authentication (a wrong password, a rejected refresh token).
        headers["WWW-Authenticate"] = WWW_AUTHENTICATE
    wait = getattr(exc, "wait", None)
    if wait:
        headers["Retry-After"] = str(int(wait))

    code = _code_for(exc)
    if isinstance(exc, ApiError):
        body = error_body(code, exc.message, exc.errors)
    elif isinstance(exc, exceptions.ValidationError):
        errors = exc.detail if isinstance(exc.detail, dict) else {api_settings.NON_FIELD_ERRORS_KEY: exc.detail}
        body = error_body(code, _validation_message(errors), errors)
    else:
        body = error_body(code, _detail_message(exc.detail))

    from rest_framework.views import set_rollback  # not at import: rest_framework.views imports this module

    set_rollback()
    return Response(body, status=exc.status_code, headers=headers)


def _detail_message(detail: Any) -> str:
    if isinstance(detail, dict):
        detail = detail.get("detail", next(iter(detail.values()), ""))
    if isinstance(detail, list):
        detail = detail[0] if detail else ""
    return str(detail)


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX)


def json_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """handler404: the error shape under /api/, Django's own page elsewhere (admin, static)."""
    if _is_api(request):
        return JsonResponse(error_body(ErrorCode.NOT_FOUND, "Not found."), status=404)
    return defaults.page_not_found(request, exception or Http404())


def json_server_error(request: HttpRequest) -> HttpResponse:
    """handler500: the error shape under /api/, Django's own page elsewhere."""
    if _is_api(request):
        return JsonResponse(error_body(ErrorCode.SERVER_ERROR, "Server error."), status=500)
    return defaults.server_error(request)
