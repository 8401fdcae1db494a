from __future__ import annotations

from collections.abc import Iterator

import pytest
from celery import Celery

from workflow_api.testing.worker import upstream_client, upstream_client_close


@pytest.fixture
def upstream(broker_url: str) -> Iterator[Celery]:
    """A plain Celery client, configured like the helpdesk's."""
    client = upstream_client(broker_url)
    try:
        yield client
    finally:
        upstream_client_close(client)
