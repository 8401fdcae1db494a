from __future__ import annotations

import io
import json
import logging
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from workflow_api.core.logging import CorrelationIdFilter, JsonFormatter
from workflow_api.core.tests.factories import UserFactory


@pytest.fixture
def user(db) -> Any:
    return UserFactory.create(username="li.wei", first_name="Li", last_name="Wei", email="li.wei@example.com")


@pytest.fixture
def json_log() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """The production log handler (JSON formatter + correlation filter) on the root logger.

    Returns a function giving the lines logged so far, each parsed as JSON.
    """
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(CorrelationIdFilter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


@pytest.fixture
def closed_broker_url() -> str:
    """An AMQP URL where nothing listens: a local port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"amqp://guest:guest@127.0.0.1:{port}//"
