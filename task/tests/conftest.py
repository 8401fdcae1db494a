from __future__ import annotations

import pytest

from task.tests.factories import Setup, published_setup
from workflow_api.core.models import Tenant


@pytest.fixture
def setup(tenant: Tenant) -> Setup:
    """A published three-step workflow with staffed roles and two ticket coordinators."""
    return published_setup(tenant=tenant)
