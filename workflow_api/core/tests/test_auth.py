"""Authentication with the auth service's JWTs, through real endpoints."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from django.conf import settings
from django.middleware.csrf import get_token
from django.test import RequestFactory
from rest_framework.test import APIClient

from workflow_api.core.tests.factories import InboundFailureFactory
from workflow_api.testing.tokens import admin_token, make_token

ME = "/api/v1/auth/me/"
FAILURES = "/api/v1/inbound-failures/"
CONTRACT_CLAIMS = {
    "user_id": 21,
    "email": "li.wei@example.com",
    "username": "li.wei",
    "full_name": "Li Wei",
    "roles": [{"system": "tts", "role": "Asset Manager"}, "hdts:Agent"],
    "tenant": "default",
}


_MISSING = object()


def _claims(**changes: Any) -> dict[str, Any]:
    claims = {**CONTRACT_CLAIMS, "exp": int(time.time()) + 3600}
    for name, value in changes.items():
        if value is _MISSING:
            claims.pop(name)
        else:
            claims[name] = value
    return claims


def _signed(claims: dict[str, Any], *, key: str | None = None, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key or settings.JWT_SIGNING_KEY, algorithm=algorithm)


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _unsigned(claims: dict[str, Any]) -> str:
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."


def _bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def _csrf_cookie_and_header() -> tuple[str, str]:
    """A CSRF cookie value and a matching X-CSRFToken value, as a browser would hold them."""
    request = RequestFactory().get("/")
    header = get_token(request)
    return request.META["CSRF_COOKIE"], header


def _assert_refused(response: Any, code: str) -> None:
    assert response.status_code == 401, response.content
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    body = response.json()
    assert set(body) == {"code", "message"}
    assert body["code"] == code
    assert body["message"]


def test_a_valid_bearer_token_describes_the_caller_as_the_contract_says(tenant):
    response = _bearer(_signed(_claims())).get(ME)

    assert response.status_code == 200
    body = response.json()
    assert {key: body[key] for key in ("user_id", "email", "full_name", "roles", "tenant")} == {
        "user_id": 21,
        "email": "li.wei@example.com",
        "full_name": "Li Wei",
        "roles": ["hdts:Agent", "tts:Asset Manager"],
        "tenant": "default",
    }


def test_a_token_without_a_tenant_claim_belongs_to_the_default_tenant(tenant):
    response = _bearer(_signed(_claims(tenant=_MISSING))).get(ME)

    assert response.status_code == 200
    assert response.json()["tenant"] == "default"


def test_a_token_naming_another_tenant_puts_the_caller_in_that_tenant(other_tenant):
    response = _bearer(make_token(tenant=other_tenant.slug)).get(ME)

    assert response.status_code == 200
    assert response.json()["tenant"] == other_tenant.slug


@pytest.mark.parametrize(
    "roles",
    [[{"system": "tts", "role": "Admin"}], ["tts:Admin"], ["hdts:Agent", {"system": "tts", "role": "Admin"}]],
    ids=["object", "string", "mixed"],
)
def test_the_admin_role_counts_whether_given_as_an_object_or_a_string(tenant, roles):
    response = _bearer(make_token(roles=roles)).get(FAILURES)

    assert response.status_code == 200, response.content


def test_an_expired_token_is_refused_with_token_expired(tenant):
    _assert_refused(_bearer(make_token(exp_in=-60)).get(ME), "token_expired")


_REFUSED: dict[str, Callable[[], str]] = {
    "alg none, unsigned": lambda: _unsigned(_claims()),
    "signed with another key": lambda: _signed(_claims(), key="another-key-that-is-long-enough-for-hs256!"),
    "HS512 with the right key": lambda: _signed(_claims(), algorithm="HS512"),
    "garbage": lambda: "not-a-jwt-at-all",
    "two segments": lambda: ".".join(_signed(_claims()).split(".")[:2]),
    "four segments": lambda: _signed(_claims()) + ".extra",
    "tampered payload": lambda: ".".join(
        [_signed(_claims()).split(".")[0], _b64(_claims(user_id=1)), _signed(_claims()).split(".")[2]]
    ),
    "no user_id": lambda: _signed(_claims(user_id=_MISSING)),
    "no exp": lambda: _signed(_claims(exp=_MISSING)),
    "exp not a number": lambda: _signed(_claims(exp="tomorrow")),
    "user_id a string": lambda: _signed(_claims(user_id="21")),
    "user_id a boolean": lambda: _signed(_claims(user_id=True)),
    "user_id a float": lambda: _signed(_claims(user_id=21.5)),
    "roles not a list": lambda: _signed(_claims(roles="tts:Admin")),
    "role string without a system": lambda: _signed(_claims(roles=["Admin"])),
    "role object without a role": lambda: _signed(_claims(roles=[{"system": "tts"}])),
    "role a number": lambda: _signed(_claims(roles=[7])),
    "tenant not a string": lambda: _signed(_claims(tenant=3)),
    "unknown tenant": lambda: _signed(_claims(tenant="no-such-tenant")),
    "a refresh token": lambda: _signed(_claims(token_type="refresh", jti="abc")),
    "an empty payload": lambda: _signed({}),
}
REFUSED_TOKENS = [
    pytest.param(
        make,
        id=name,
        # PyJWT warns that our (HS256-sized) key is short for HS512; the point is that it is refused.
        marks=[pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")] if "HS512" in name else [],
    )
    for name, make in _REFUSED.items()
]


@pytest.mark.parametrize("make", REFUSED_TOKENS)
def test_a_token_that_is_not_an_acceptable_access_token_is_refused(tenant, make):
    _assert_refused(_bearer(make()).get(ME), "authentication_failed")


@pytest.mark.parametrize("make", REFUSED_TOKENS)
def test_a_refused_token_in_the_cookie_is_refused_the_same_way(tenant, make):
    client = APIClient()
    client.cookies[settings.JWT_ACCESS_COOKIE] = make()

    _assert_refused(client.get(FAILURES), "authentication_failed")


def test_an_expired_token_in_the_cookie_is_refused_with_token_expired(tenant):
    client = APIClient()
    client.cookies[settings.JWT_ACCESS_COOKIE] = make_token(exp_in=-60)

    _assert_refused(client.get(ME), "token_expired")


def test_a_bearer_header_without_a_token_is_refused(tenant):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer ")

    _assert_refused(client.get(ME), "authentication_failed")


@pytest.mark.parametrize("headers", [{}, {"HTTP_AUTHORIZATION": "Basic bGk6d2Vp"}], ids=["nothing", "basic auth"])
def test_a_request_without_a_bearer_token_or_cookie_is_not_authenticated(tenant, headers):
    client = APIClient()
    client.credentials(**headers)

    _assert_refused(client.get(ME), "not_authenticated")


def test_the_access_token_cookie_authenticates_a_read(tenant):
    client = APIClient(enforce_csrf_checks=True)
    client.cookies[settings.JWT_ACCESS_COOKIE] = make_token()

    response = client.get(ME)

    assert response.status_code == 200
    assert response.json()["user_id"] == 21


def test_a_cookie_authenticated_write_without_a_csrf_token_is_refused(tenant):
    client = APIClient(enforce_csrf_checks=True)
    client.cookies[settings.JWT_ACCESS_COOKIE] = make_token()

    response = client.post(ME, {}, format="json")

    assert response.status_code == 403
    assert response.json()["code"] == "csrf_failed"


def test_a_cookie_authenticated_write_with_a_wrong_csrf_token_is_refused(tenant):
    cookie, _ = _csrf_cookie_and_header()
    _, other_header = _csrf_cookie_and_header()
    client = APIClient(enforce_csrf_checks=True)
    client.cookies[settings.JWT_ACCESS_COOKIE] = make_token()
    client.cookies[settings.CSRF_COOKIE_NAME] = cookie

    response = client.post(ME, {}, format="json", HTTP_X_CSRFTOKEN=other_header)

    assert response.status_code == 403
    assert response.json()["code"] == "csrf_failed"


def test_a_cookie_authenticated_write_with_the_csrf_cookie_and_header_passes_the_check(tenant):
    cookie, header = _csrf_cookie_and_header()
    client = APIClient(enforce_csrf_checks=True)
    client.cookies[settings.JWT_ACCESS_COOKIE] = make_token()
    client.cookies[settings.CSRF_COOKIE_NAME] = cookie

    response = client.post(ME, {}, format="json", HTTP_X_CSRFTOKEN=header)

    # Past authentication and CSRF: the endpoint itself only reads.
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


def test_a_bearer_authenticated_write_is_not_csrf_checked(tenant):
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token()}")

    response = client.post(ME, {}, format="json")

    assert response.status_code == 405


def test_the_bearer_header_wins_over_the_cookie(tenant):
    client = APIClient()
    client.cookies[settings.JWT_ACCESS_COOKIE] = make_token(user_id=99)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(user_id=7)}")

    assert client.get(ME).json()["user_id"] == 7


def test_inbound_failures_need_the_admin_role(user_client):
    response = user_client.get(FAILURES)

    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_an_admin_sees_the_inbound_failures_of_their_tenant_and_those_without_one(admin_client, tenant, other_tenant):
    own = InboundFailureFactory.create(tenant=tenant)
    unknown = InboundFailureFactory.create(tenant=None, error_code="undecodable_message")
    InboundFailureFactory.create(tenant=other_tenant)

    response = admin_client.get(FAILURES)

    assert response.status_code == 200
    assert sorted(row["id"] for row in response.json()["results"]) == sorted([own.id, unknown.id])


def test_another_tenants_inbound_failure_is_not_found(admin_client, other_tenant):
    theirs = InboundFailureFactory.create(tenant=other_tenant)

    response = admin_client.get(f"{FAILURES}{theirs.id}/")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_failures_without_a_tenant_are_hidden_from_another_tenants_admin(tenant, other_tenant):
    theirs = InboundFailureFactory.create(tenant=other_tenant)
    unknown = InboundFailureFactory.create(tenant=None, error_code="undecodable_message")
    other_admin = _bearer(admin_token(tenant=other_tenant.slug))

    listed = other_admin.get(FAILURES)
    detail = other_admin.get(f"{FAILURES}{unknown.id}/")

    assert [row["id"] for row in listed.json()["results"]] == [theirs.id]
    assert detail.status_code == 404
    assert detail.json()["code"] == "not_found"


def test_an_admin_of_the_other_tenant_sees_it(other_tenant):
    theirs = InboundFailureFactory.create(tenant=other_tenant)

    response = _bearer(admin_token(tenant=other_tenant.slug)).get(f"{FAILURES}{theirs.id}/")

    assert response.status_code == 200
    assert response.json()["body"] == theirs.body


def test_inbound_failures_can_be_filtered_by_error_code(admin_client, tenant):
    wanted = InboundFailureFactory.create(error_code="unknown_role")
    InboundFailureFactory.create(error_code="invalid_message")

    response = admin_client.get(FAILURES, {"error_code": "unknown_role"})

    assert [row["id"] for row in response.json()["results"]] == [wanted.id]
