"""Production settings: Django's deployment checks pass, and missing secrets stop the start."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from workflow_api.testing.worker import ROOT

GOOD_SECRETS = {
    "SECRET_KEY": "k3Yq0-a-production-secret-key-that-is-long-and-random-9f8e7d6c5b4a",
    "JWT_SIGNING_KEY": "the-auth-service-shared-signing-key-0123456789",
    "ALLOWED_HOSTS": "workflow.example.com",
    # Django warns (security.W021) unless HSTS preload is chosen; a production
    # site behind TLS is expected to opt in.
    "SECURE_HSTS_PRELOAD": "1",
}


def _check_deploy(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {
        key: value
        for key, value in os.environ.items()
        if key not in {"SECRET_KEY", "JWT_SIGNING_KEY", "ALLOWED_HOSTS", "DEBUG", "SECURE_HSTS_PRELOAD"}
    }
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={**base, "DJANGO_SETTINGS_MODULE": "workflow_api.settings", "DJANGO_ENV": "production", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_settings_pass_djangos_deployment_checks():
    result = _check_deploy(GOOD_SECRETS)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNING" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    "secrets",
    [
        {"ALLOWED_HOSTS": "workflow.example.com"},
        {
            "SECRET_KEY": "django-insecure-development-only-secret-key-change-me",
            "JWT_SIGNING_KEY": "development-only-jwt-signing-key-change-me",
            "ALLOWED_HOSTS": "workflow.example.com",
        },
        {"SECRET_KEY": "short", "JWT_SIGNING_KEY": "short", "ALLOWED_HOSTS": "workflow.example.com"},
    ],
    ids=["missing", "the development defaults", "too short"],
)
def test_production_refuses_to_start_without_real_secrets(secrets):
    result = _check_deploy(secrets)

    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr
    assert "JWT_SIGNING_KEY" in result.stderr


def test_production_refuses_to_start_without_allowed_hosts():
    result = _check_deploy({**GOOD_SECRETS, "ALLOWED_HOSTS": ""})

    assert result.returncode != 0
    assert "ALLOWED_HOSTS" in result.stderr


def test_production_refuses_to_start_with_debug_on():
    result = _check_deploy({**GOOD_SECRETS, "DEBUG": "1"})

    assert result.returncode != 0
    assert "DEBUG must be off" in result.stderr
