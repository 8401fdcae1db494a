"""Standalone login, refresh and logout: tokens of the auth service's shape."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import jwt
import pytest
from django.conf import settings
from django.db import connection
from rest_framework.test import APIClient

from audit.models import AuditAction, AuditEvent
from workflow_api.core.accounts import auth_login, auth_refresh
from workflow_api.core.errors import ApiError
from workflow_api.core.tests.factories import PASSWORD, UserFactory

LOGIN = "/api/v1/auth/login/"
REFRESH = "/api/v1/auth/refresh/"
LOGOUT = "/api/v1/auth/logout/"
ME = "/api/v1/auth/me/"


def _decode(token: str) -> dict[str, Any]:
    return jwt.decode(token, settings.JWT_SIGNING_KEY, algorithms=["HS256"])


def _login(client: APIClient, username: str = "li.wei", password: str = PASSWORD) -> Any:
    return client.post(LOGIN, {"username": username, "password": password}, format="json")


def test_login_sets_http_only_token_cookies_and_returns_the_tokens(tenant, user):
    response = _login(APIClient())

    assert response.status_code == 200
    body = response.json()
    access = response.cookies[settings.JWT_ACCESS_COOKIE]
    refresh = response.cookies[settings.JWT_REFRESH_COOKIE]
    assert access.value == body["access"]
    assert refresh.value == body["refresh"]
    assert access["httponly"]
    assert refresh["httponly"]
    assert access["samesite"] == refresh["samesite"] == "Lax"
    assert refresh["path"] == "/api/v1/auth/"
    # The CSRF cookie a cookie-authenticated write will need.
    assert response.cookies[settings.CSRF_COOKIE_NAME].value


@pytest.mark.parametrize(
    "content_type",
    ["application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/plain"],
    ids=["form", "multipart", "text"],
)
def test_a_login_in_a_body_another_site_could_send_is_refused(tenant, user, content_type):
    # What a cross-site form or a no-cors fetch can send without a preflight;
    # the login takes JSON only, so it cannot be forged into a victim's browser.
    response = APIClient().post(LOGIN, f"username=li.wei&password={PASSWORD}", content_type=content_type)

    assert response.status_code == 415
    assert settings.JWT_ACCESS_COOKIE not in response.cookies


def test_the_login_tokens_carry_the_contracts_claims(tenant, user):
    body = _login(APIClient()).json()

    access = _decode(body["access"])
    assert type(access["user_id"]) is int
    assert access["user_id"] == user.pk
    assert access["email"] == "li.wei@example.com"
    assert access["username"] == "li.wei"
    assert access["full_name"] == "Li Wei"
    assert access["roles"] == []
    assert access["tenant"] == "default"
    assert access["exp"] > access["iat"]
    assert access["token_type"] == "access"
    assert _decode(body["refresh"])["token_type"] == "refresh"


def test_a_superuser_logs_in_with_the_admin_role(tenant):
    UserFactory.create(username="root", is_superuser=True, is_staff=True)

    access = _decode(_login(APIClient(), "root").json()["access"])

    assert access["roles"] == ["tts:Admin"]


def test_the_login_access_token_authenticates_the_api(tenant, user):
    access = _login(APIClient()).json()["access"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")

    me = client.get(ME).json()

    assert me["user_id"] == user.pk
    assert me["tenant"] == "default"


def test_the_login_refresh_token_is_not_an_access_token(tenant, user):
    refresh = _login(APIClient()).json()["refresh"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {refresh}")

    response = client.get(ME)

    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_a_login_is_audited(tenant, user):
    _login(APIClient())

    assert AuditEvent.objects.filter(action=AuditAction.USER_LOGGED_IN, target_id=str(user.pk)).count() == 1


@pytest.mark.parametrize(
    ("username", "password"), [("li.wei", "wrong"), ("nobody", PASSWORD)], ids=["wrong password", "unknown user"]
)
def test_a_wrong_login_is_401_and_issues_nothing(tenant, user, username, password):
    response = _login(APIClient(), username, password)

    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert settings.JWT_ACCESS_COOKIE not in response.cookies
    assert not AuditEvent.objects.filter(action=AuditAction.USER_LOGGED_IN).exists()


def test_an_inactive_user_cannot_log_in(tenant):
    UserFactory.create(username="gone", is_active=False)

    assert _login(APIClient(), "gone").status_code == 401


def test_a_login_without_credentials_is_400_with_field_errors(tenant):
    response = APIClient().post(LOGIN, {}, format="json")

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "validation_error"
    assert set(body["errors"]) == {"username", "password"}


def test_refresh_rotates_and_the_old_refresh_token_stops_working(tenant, user):
    first = _login(APIClient()).json()["refresh"]

    rotated = APIClient().post(REFRESH, {"refresh": first}, format="json")
    assert rotated.status_code == 200
    second = rotated.json()["refresh"]
    assert second != first
    assert rotated.cookies[settings.JWT_REFRESH_COOKIE].value == second
    assert _decode(rotated.json()["access"])["user_id"] == user.pk

    assert APIClient().post(REFRESH, {"refresh": second}, format="json").status_code == 200
    reused = APIClient().post(REFRESH, {"refresh": first}, format="json")
    assert reused.status_code == 401
    assert reused.json()["code"] == "authentication_failed"


def test_refresh_issues_the_users_current_roles(tenant, user):
    refresh = _login(APIClient()).json()["refresh"]
    user.is_superuser = True
    user.save()

    access = APIClient().post(REFRESH, {"refresh": refresh}, format="json").json()["access"]

    assert _decode(access)["roles"] == ["tts:Admin"]


def test_refresh_for_a_deactivated_user_is_refused(tenant, user):
    refresh = _login(APIClient()).json()["refresh"]
    user.is_active = False
    user.save()

    assert APIClient().post(REFRESH, {"refresh": refresh}, format="json").status_code == 401


def test_an_access_token_cannot_be_used_to_refresh(tenant, user):
    access = _login(APIClient()).json()["access"]

    assert APIClient().post(REFRESH, {"refresh": access}, format="json").status_code == 401


@pytest.mark.parametrize("url", [REFRESH, LOGOUT])
def test_refresh_and_logout_without_a_refresh_token_are_400_with_a_field_error(tenant, url):
    response = APIClient().post(url, {}, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert "refresh" in response.json()["errors"]


def test_logout_blacklists_the_refresh_token_and_clears_the_cookies(tenant, user):
    refresh = _login(APIClient()).json()["refresh"]

    response = APIClient().post(LOGOUT, {"refresh": refresh}, format="json")

    assert response.status_code == 204
    assert response.cookies[settings.JWT_ACCESS_COOKIE]["max-age"] == 0
    assert response.cookies[settings.JWT_REFRESH_COOKIE]["max-age"] == 0
    assert APIClient().post(REFRESH, {"refresh": refresh}, format="json").status_code == 401
    assert APIClient().post(LOGOUT, {"refresh": refresh}, format="json").status_code == 401
    assert AuditEvent.objects.filter(action=AuditAction.USER_LOGGED_OUT, target_id=str(user.pk)).count() == 1


@pytest.mark.parametrize(("url", "status"), [(REFRESH, 200), (LOGOUT, 204)])
def test_the_refresh_cookie_is_used_only_with_a_csrf_token(tenant, user, url, status):
    client = APIClient(enforce_csrf_checks=True)
    _login(client)

    refused = client.post(url, format="json")
    assert refused.status_code == 403
    assert refused.json()["code"] == "csrf_failed"

    accepted = client.post(url, format="json", HTTP_X_CSRFTOKEN=client.cookies[settings.CSRF_COOKIE_NAME].value)
    assert accepted.status_code == status


def test_after_login_a_browser_can_write_with_its_cookies_and_csrf_header(tenant, user):
    client = APIClient(enforce_csrf_checks=True)
    _login(client)

    assert client.post(ME, format="json").json()["code"] == "csrf_failed"
    passed = client.post(ME, format="json", HTTP_X_CSRFTOKEN=client.cookies[settings.CSRF_COOKIE_NAME].value)
    assert passed.status_code == 405  # past authentication and CSRF; /me/ only reads


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_of_concurrent_refreshes_with_one_token_exactly_one_succeeds(postgres):
    UserFactory.create(username="li.wei")
    refresh = auth_login(username="li.wei", password=PASSWORD).refresh
    start = threading.Barrier(6)

    def attempt() -> str:
        try:
            start.wait(timeout=10)
            auth_refresh(refresh=refresh)
            return "rotated"
        except ApiError:
            return "rejected"
        finally:
            connection.close()  # each thread has its own connection

    with ThreadPoolExecutor(max_workers=6) as pool:
        outcomes = list(pool.map(lambda _: attempt(), range(6)))

    assert sorted(outcomes) == ["rejected"] * 5 + ["rotated"]
