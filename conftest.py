"""Fixtures every app's tests share."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from workflow_api.core.models import Tenant
from workflow_api.core.tenancy import default_tenant
from workflow_api.testing.services import require_broker, require_postgres
from workflow_api.testing.tokens import admin_token, make_token


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
