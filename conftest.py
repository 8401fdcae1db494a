"""Fixtures every app's tests share."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from workflow_api.core.models import Tenant
from workflow_api.core.tenancy import default_tenant
from workflow_api.testing.services import require_broker, require_postgres
from workflow_api.testing.tokens import admin_token, make_token


@pytest.fixture(scope="session", autouse=True)
def _celery_configured_from_the_real_settings() -> None:
    """Celery reads its configuration once, on first use; make that happen outside any override_settings.

    Otherwise a test overriding CELERY_IN_PROCESS or CELERY_BROKER_URL could
    be the first user and leave the app eager, or pointed at a dead broker,
    for the rest of the session.
    """
    from workflow_api.celery import app

    assert app.conf.broker_url


@pytest.fixture
def tenant(db) -> Tenant:
    return default_tenant()


@pytest.fixture
def other_tenant(db) -> Tenant:
    return Tenant.objects.create(slug="acme", name="Acme")


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def user_client(db) -> APIClient:
    """A caller with an ordinary tts role, in the default tenant."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token()}")
    return client


@pytest.fixture
def admin_client(db) -> APIClient:
    """A caller holding tts:Admin, in the default tenant."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {admin_token()}")
    return client


@pytest.fixture
def postgres(db) -> None:
    require_postgres()


@pytest.fixture
def broker_url() -> str:
    return require_broker()
