"""Reaching the real PostgreSQL and RabbitMQ from tests.

A test that needs a service it cannot reach is skipped with the reason, unless
REQUIRE_SERVICES=1 (CI), where it fails instead.
"""

from __future__ import annotations

import os

import pytest
from django.conf import settings
from django.db import connection


def _unavailable(reason: str) -> None:
    if os.environ.get("REQUIRE_SERVICES") == "1":
        pytest.fail(f"REQUIRE_SERVICES=1 but {reason}")
    pytest.skip(reason)


def require_postgres() -> None:
    if connection.vendor != "postgresql":
        _unavailable(f"needs PostgreSQL (DATABASE_URL points at {connection.vendor})")


def require_broker() -> str:
    url = settings.CELERY_BROKER_URL
    if not url.startswith("amqp"):
        _unavailable("needs RabbitMQ (CELERY_BROKER_URL is not an amqp:// URL)")
    from kombu import Connection

    try:
        with Connection(url, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1)
    except Exception as exc:  # noqa: BLE001 - reported as the reason
        _unavailable(f"RabbitMQ at {url} is unreachable: {exc}")
    return url


CHROMIUM = os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER_BIN", "/usr/bin/chromedriver")


def require_browser() -> tuple[str, str]:
    """Paths of the distribution's Chromium and chromedriver (`make browser` installs them), and Selenium."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:
        _unavailable(
            f"needs Chromium and chromedriver: {', '.join(missing)} missing "
            "(`make browser`, or apt-get install chromium chromium-driver)"
        )
    try:
        import selenium  # noqa: F401
    except ImportError:
        _unavailable("needs selenium (pip install -r requirements-dev.txt)")
    return CHROMIUM, CHROMEDRIVER
