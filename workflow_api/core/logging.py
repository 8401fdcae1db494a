"""Structured JSON logs, each line carrying the request id or message id.

The id is bound by RequestIdMiddleware for a request and by the task signals
below for a Celery job (in a worker or run in-process); settings.LOGGING
imports this module in every process, so the signals are always connected.
RequestIdMiddleware also writes the one access line per request (logger
`workflow_api.access`), so that line carries the id like every other; the
web server's own access log is off (workflow_api/gunicorn_conf.py).
"""

from __future__ import annotations

import contextvars
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from celery.signals import task_postrun, task_prerun
from django.http import HttpRequest, HttpResponse
from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

NO_CORRELATION_ID = "-"
access_logger = logging.getLogger("workflow_api.access")
_correlation_id: contextvars.ContextVar[str] = contextvars.ContextVar("correlation_id", default=NO_CORRELATION_ID)
# What a caller's X-Request-ID may look like; anything else (spaces, quotes,
# newlines, very long values) could forge or break log lines and is replaced.
_SAFE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def current_correlation_id() -> str:
    return _correlation_id.get()


def bind_correlation_id(value: str) -> contextvars.Token[str]:
    return _correlation_id.set(value)


def unbind_correlation_id(token: contextvars.Token[str]) -> None:
    _correlation_id.reset(token)


def safe_request_id(incoming: str | None) -> str:
    """The caller's X-Request-ID if it is safe to log and echo, else a new one."""
    if incoming and _SAFE_ID.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


class CorrelationIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "correlation_id"):
            correlation_id = _correlation_id.get()
            if correlation_id == NO_CORRELATION_ID:
                # Django logs 4xx/5xx responses ("Unauthorized: /api/...") after
                # the middleware has returned, with the request in the record.
                correlation_id = getattr(getattr(record, "request", None), "request_id", NO_CORRELATION_ID)
            record.correlation_id = correlation_id
        return True


class JsonFormatter(_JsonFormatter):
    """One JSON object a line: time (ISO 8601, UTC, with its offset), level, logger, message, correlation_id.

    Anything passed in `extra=` becomes a field of its own.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger", "asctime": "time"})
        kwargs.setdefault("timestamp", False)
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s %(correlation_id)s", *args, **kwargs)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds")


class RequestIdMiddleware:
    """Takes `X-Request-ID` from the caller (if sane) or makes one; echoes it back; logs the access line.

    First in MIDDLEWARE, so the id is bound for everything below it and the
    access line (method, path without the query string, status, duration_ms)
    covers the whole response, static files included.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = safe_request_id(request.headers.get("X-Request-ID"))
        request.request_id = request_id  # type: ignore[attr-defined]
        token = bind_correlation_id(request_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            response["X-Request-ID"] = request_id
            access_logger.info(
                "%s %s %s",
                request.method,
                request.path,
                response.status_code,
                extra={
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                },
            )
        finally:
            unbind_correlation_id(token)
        return response


# One stack per thread: a job run in-process from inside another (eager apply)
# binds and unbinds in LIFO order.
_task_tokens = threading.local()


def _token_stack() -> list[contextvars.Token[str]]:
    stack: list[contextvars.Token[str]] | None = getattr(_task_tokens, "stack", None)
    if stack is None:
        stack = _task_tokens.stack = []
    return stack


@task_prerun.connect(weak=False)
def _bind_task_id(task_id: str | None = None, **_: Any) -> None:
    """Log lines written while a job runs carry its message id."""
    _token_stack().append(bind_correlation_id(task_id or NO_CORRELATION_ID))


@task_postrun.connect(weak=False)
def _unbind_task_id(**_: Any) -> None:
    stack = _token_stack()
    if stack:
        unbind_correlation_id(stack.pop())
