"""JSON log lines carry the request id (X-Request-ID) or the message id."""

from __future__ import annotations

import logging
import re

import pytest
from rest_framework.test import APIClient

from workflow_api.celery import app
from workflow_api.core.logging import current_correlation_id

GENERATED_ID = re.compile(r"[0-9a-f]{32}")


@app.task(name="core_tests.log_a_line")
def log_a_line_job() -> str:
    """Logs one line and reports the correlation id it saw (test only)."""
    logging.getLogger("core_tests").info("inside the job")
    return current_correlation_id()


def _lines_of(lines, logger):
    return [line for line in lines if line["logger"] == logger]


@pytest.mark.parametrize(
    ("path", "logged_by"),
    [("/api/v1/auth/me/", "django.request"), ("/api/v1/no-such-thing/", "django.request")],
    ids=["401 from the API", "404 for an unknown path"],
)
def test_a_requests_log_lines_carry_the_request_id_it_echoes(db, json_log, path, logged_by):
    response = APIClient().get(path, HTTP_X_REQUEST_ID="req-42.a:B_7")

    assert response["X-Request-ID"] == "req-42.a:B_7"
    lines = _lines_of(json_log(), logged_by)
    assert lines, "the request logged nothing"
    assert {line["correlation_id"] for line in lines} == {"req-42.a:B_7"}
    assert {"time", "level", "logger", "message"} <= set(lines[0])


def test_a_request_without_an_id_gets_one_and_logs_with_it(db, json_log):
    response = APIClient().get("/api/v1/auth/me/")

    request_id = response["X-Request-ID"]
    assert GENERATED_ID.fullmatch(request_id)
    assert {line["correlation_id"] for line in _lines_of(json_log(), "django.request")} == {request_id}


@pytest.mark.parametrize(
    "unsafe",
    ["has spaces", 'quote"d', "x" * 129, "line\nbreak", "trailing-newline\n", "<script>", "ünïcode"],
    ids=["spaces", "quote", "too long", "newline", "trailing newline", "markup", "non-ascii"],
)
def test_an_unsafe_request_id_is_replaced(db, json_log, unsafe):
    response = APIClient().get("/api/v1/auth/me/", HTTP_X_REQUEST_ID=unsafe)

    request_id = response["X-Request-ID"]
    assert request_id != unsafe
    assert GENERATED_ID.fullmatch(request_id)
    assert {line["correlation_id"] for line in _lines_of(json_log(), "django.request")} == {request_id}


def test_a_jobs_log_lines_carry_its_message_id(json_log):
    seen = log_a_line_job.apply(task_id="message-7f3a").get()

    assert seen == "message-7f3a"
    assert [line["correlation_id"] for line in _lines_of(json_log(), "core_tests")] == ["message-7f3a"]
    assert current_correlation_id() == "-"
