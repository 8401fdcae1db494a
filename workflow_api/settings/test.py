"""Test settings: the same settings, plus what only the test suite needs."""

from typing import Any

from workflow_api.settings import *  # noqa: F403
from workflow_api.settings import INSTALLED_APPS, LOGGING

# Overrides `flush` so transactional tests can empty append-only tables.
INSTALLED_APPS = ["workflow_api.testing", *INSTALLED_APPS]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
_handlers: Any = LOGGING["handlers"]
_handlers["console"]["formatter"] = "plain"
# Nothing is collected for tests; WhiteNoise would warn about a missing directory.
STATIC_ROOT: str | None = None  # type: ignore[no-redef]
