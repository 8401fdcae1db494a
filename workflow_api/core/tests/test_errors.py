"""One error shape, {"code", "message", "errors"?}, for every API error."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import connection, transaction
from django.http import Http404
from django.test import RequestFactory
from rest_framework import exceptions
from rest_framework.test import APIClient

from workflow_api.core.errors import ApiError, ErrorCode, exception_handler, json_server_error
from workflow_api.core.models import Tenant

LOGIN = "/api/v1/auth/login/"


def test_validation_errors_name_each_field(db):
    response = APIClient().post(LOGIN, {"username": "li.wei"}, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "code": "validation_error",
        "message": "password: This field is required.",
        "errors": {"password": ["This field is required."]},
    }


def test_a_body_that_is_not_json_is_a_parse_error(db):
    response = APIClient().post(LOGIN, "{not json", content_type="application/json")

    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


def test_a_form_body_is_an_unsupported_media_type(db):
    response = APIClient().post(LOGIN, {"username": "li.wei", "password": "x"})

    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"


def test_a_wrong_method_is_method_not_allowed(db):
    response = APIClient().get(LOGIN)

    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


@pytest.mark.parametrize("path", ["/api/v1/no-such-thing/", "/api/v1/auth/nope", "/api/v2/"])
def test_an_unknown_api_path_is_a_json_404(db, path):
    response = APIClient().get(path)

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"code": "not_found", "message": "Not found."}


def test_an_unknown_path_outside_the_api_is_djangos_own_404_page(db):
    response = APIClient().get("/no-such-page/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_an_api_error_keeps_its_code_status_and_field_errors():
    error = ApiError("invalid_transition", "Invalid transition: x", status_code=409, errors={"transition_id": ["x"]})

    response = exception_handler(error, {})

    assert response is not None
    assert response.status_code == 409
    assert response.data == {
        "code": "invalid_transition",
        "message": "Invalid transition: x",
        "errors": {"transition_id": ["x"]},
    }


def test_a_401_raised_outside_authentication_still_carries_a_challenge():
    response = exception_handler(ApiError(ErrorCode.AUTHENTICATION_FAILED, "no", status_code=401), {})

    assert response is not None
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_a_model_validation_error_becomes_a_400_with_field_errors():
    error = DjangoValidationError({"slug": ["Enter a valid slug."], "__all__": ["Slug and name clash."]})

    response = exception_handler(error, {})

    assert response is not None
    assert response.status_code == 400
    assert response.data["code"] == "validation_error"
    assert response.data["errors"] == {"slug": ["Enter a valid slug."], "non_field_errors": ["Slug and name clash."]}


def test_a_validation_error_without_fields_is_reported_as_non_field_errors():
    response = exception_handler(exceptions.ValidationError("Not allowed today."), {})

    assert response is not None
    assert response.data == {
        "code": "validation_error",
        "message": "Not allowed today.",
        "errors": {"non_field_errors": ["Not allowed today."]},
    }


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (Http404(), 404, "not_found"),
        (exceptions.Throttled(wait=30), 429, "throttled"),
        (exceptions.APIException(), 500, "server_error"),
        (exceptions.NotFound("No such task.", code="task_not_found"), 404, "task_not_found"),
    ],
)
def test_other_errors_get_a_stable_code(exc, status, code):
    response = exception_handler(exc, {})

    assert response is not None
    assert response.status_code == status
    assert response.data["code"] == code
    assert set(response.data) == {"code", "message"}


def test_a_bug_is_left_to_django():
    assert exception_handler(RuntimeError("boom"), {}) is None


def test_an_api_error_rolls_back_a_views_transaction(db, monkeypatch):
    # As under ATOMIC_REQUESTS, where the view runs inside its own transaction.
    monkeypatch.setitem(connection.settings_dict, "ATOMIC_REQUESTS", True)
    with transaction.atomic():
        Tenant.objects.create(slug="doomed", name="Doomed")
        exception_handler(ApiError(ErrorCode.CONFLICT, "clash", status_code=409), {})
        assert transaction.get_rollback()

    assert not Tenant.objects.filter(slug="doomed").exists()


@pytest.mark.parametrize(
    ("path", "json_expected"), [("/api/v1/tasks/1/", True), ("/admin/", False)], ids=["api", "admin"]
)
def test_a_server_error_is_json_only_under_the_api(path, json_expected):
    response = json_server_error(RequestFactory().get(path))

    assert response.status_code == 500
    if json_expected:
        assert json.loads(response.content) == {"code": "server_error", "message": "Server error."}
    else:
        assert not response["Content-Type"].startswith("application/json")
