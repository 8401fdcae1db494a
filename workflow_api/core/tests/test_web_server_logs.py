"""The web process as deployed (gunicorn with workflow_api/gunicorn_conf.py) writes JSON lines only."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import requests

from workflow_api.testing.worker import ROOT

# The command of `make web` and of the image's CMD, with a socket of ours.
GUNICORN = [
    sys.executable,
    "-m",
    "gunicorn",
    "--config",
    "python:workflow_api.gunicorn_conf",
    "workflow_api.wsgi:application",
    "--workers",
    "1",
]


@contextmanager
def _gunicorn(tmp_path: Path) -> Iterator[tuple[int, list[str]]]:
    """gunicorn serving a loopback port the OS picked; yields (port, output lines once it has stopped).

    The test holds the listening socket and hands gunicorn its descriptor
    (`--bind fd://N`), so there is no window in which another process could
    take the port, and a request sent before the worker has booted waits in
    the socket's backlog instead of being refused. gunicorn is stopped (and,
    failing that, killed) on the way out.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "CELERY_"))},
        "DJANGO_SETTINGS_MODULE": "workflow_api.settings",
        "DJANGO_ENV": "development",
        # DEBUG on is when Django's own console handler used to print a second, plain-text line.
        "DEBUG": "1",
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'web.sqlite3'}",
    }
    process = subprocess.Popen(
        [*GUNICORN, "--bind", f"fd://{listener.fileno()}"],
        cwd=ROOT,
        env=env,
        pass_fds=[listener.fileno()],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        yield listener.getsockname()[1], lines
    finally:
        process.terminate()
        try:
            output, _ = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate(timeout=30)
        listener.close()
        lines.extend(line for line in output.splitlines() if line.strip())


def _parsed(lines: list[str]) -> list[dict[str, Any]]:
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise AssertionError(f"not a JSON line: {line!r}\nall output:\n" + "\n".join(lines)) from exc
    return parsed


def test_every_line_gunicorn_writes_is_json_and_a_requests_lines_carry_its_request_id(tmp_path):
    with _gunicorn(tmp_path) as (port, lines):
        refused = requests.get(
            f"http://127.0.0.1:{port}/api/v1/auth/me/", headers={"X-Request-ID": "web-req-1"}, timeout=60
        )
        live = requests.get(f"http://127.0.0.1:{port}/health/live/", timeout=60)

    assert (refused.status_code, refused.headers["X-Request-ID"]) == (401, "web-req-1")
    assert live.status_code == 200
    records = _parsed(lines)
    for record in records:
        assert {"time", "level", "logger", "message", "correlation_id"} <= set(record), record
        assert datetime.fromisoformat(record["time"]).utcoffset() is not None, record
    assert any(r["logger"] == "gunicorn.error" and "Booting worker" in r["message"] for r in records)

    first = [r for r in records if r["correlation_id"] == "web-req-1"]
    assert sorted(r["logger"] for r in first) == ["django.request", "workflow_api.access"]
    access = next(r for r in first if r["logger"] == "workflow_api.access")
    assert (access["method"], access["path"], access["status"]) == ("GET", "/api/v1/auth/me/", 401)
    # Only the middleware's access line: gunicorn's own access log is off.
    second = [r for r in records if r["correlation_id"] == live.headers["X-Request-ID"]]
    assert [(r["logger"], r["status"]) for r in second] == [("workflow_api.access", 200)]
    assert not [r for r in records if r["logger"] == "gunicorn.access"]
