from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

from django.conf import settings
from django.db.models import Q, QuerySet
from django.middleware.csrf import rotate_token
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from workflow_api.core import accounts
from workflow_api.core.api.serializers import (
    InboundFailureSerializer,
    LoginSerializer,
    MeSerializer,
    RefreshSerializer,
)
from workflow_api.core.auth import IsEngineAdmin, TokenUser, enforce_csrf
from workflow_api.core.errors import ApiError, ErrorCode
from workflow_api.core.models import InboundFailure


def _with_token_cookies(response: Response, pair: accounts.TokenPair) -> Response:
    common: dict[str, Any] = {"httponly": True, "secure": settings.JWT_COOKIE_SECURE, "samesite": "Lax"}
    access_age = int(cast(timedelta, settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"]).total_seconds())
    refresh_age = int(cast(timedelta, settings.SIMPLE_JWT["REFRESH_TOKEN_LIFETIME"]).total_seconds())
    response.set_cookie(settings.JWT_ACCESS_COOKIE, pair.access, max_age=access_age, **common)
    response.set_cookie(settings.JWT_REFRESH_COOKIE, pair.refresh, max_age=refresh_age, path="/api/v1/auth/", **common)
    return response


def _refresh_token_from(request: Request) -> str:
    """The body's `refresh`, else the refresh_token cookie (then the request must pass CSRF)."""
    serializer = RefreshSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    token = serializer.validated_data.get("refresh")
    if not token:
        token = request.COOKIES.get(settings.JWT_REFRESH_COOKIE, "")
        if token:
            enforce_csrf(request)
    if not token:
        raise ApiError(
            ErrorCode.VALIDATION_ERROR,
            "refresh: This field is required (or send the refresh_token cookie).",
            errors={"refresh": ["This field is required."]},
        )
    return token


class LoginView(APIView):
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    @extend_schema(request=LoginSerializer, responses={200: None})
    def post(self, request: Request) -> Response:
        serializer = LoginSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        pair = accounts.auth_login(**serializer.validated_data)
        # A fresh CSRF secret per login (as Django's own login does), set as the
        # csrftoken cookie that cookie-authenticated writes must echo: a token
        # planted before the login is useless after it. The price: a page that
        # embedded the old token (Swagger UI) must be reloaded (README, step 1).
        # The login itself is not forgeable cross-site: it accepts JSON only.
        rotate_token(request)
        return _with_token_cookies(Response({"access": pair.access, "refresh": pair.refresh}), pair)


class RefreshView(APIView):
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    @extend_schema(request=RefreshSerializer, responses={200: None})
    def post(self, request: Request) -> Response:
        pair = accounts.auth_refresh(refresh=_refresh_token_from(request))
        return _with_token_cookies(Response({"access": pair.access, "refresh": pair.refresh}), pair)


class LogoutView(APIView):
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    @extend_schema(request=RefreshSerializer, responses={204: None})
    def post(self, request: Request) -> Response:
        accounts.auth_logout(refresh=_refresh_token_from(request))
        response = Response(status=status.HTTP_204_NO_CONTENT)
        response.delete_cookie(settings.JWT_ACCESS_COOKIE)
        response.delete_cookie(settings.JWT_REFRESH_COOKIE, path="/api/v1/auth/")
        return response


class MeView(APIView):
    @extend_schema(responses=MeSerializer)
    def get(self, request: Request) -> Response:
        user = cast(TokenUser, request.user)
        data = {
            "user_id": user.user_id,
            "email": user.email,
            "username": user.username,
            "full_name": user.full_name,
            "roles": sorted(user.roles),
            "tenant": user.tenant.slug,
        }
        return Response(MeSerializer(data).data)


class _InboundFailures(generics.GenericAPIView):
    """Messages that could not be processed (admin), of the caller's tenant.

    A failure whose tenant could not be told (an undecodable body, a message
    naming an unknown tenant) belongs to no tenant; its body may still carry
    another tenant's data, so only the default tenant's admins, who run the
    installation, see it.
    """

    permission_classes = [IsEngineAdmin]
    serializer_class = InboundFailureSerializer

    def get_queryset(self) -> QuerySet[InboundFailure]:
        if getattr(self, "swagger_fake_view", False):  # schema generation: no caller
            return InboundFailure.objects.none()
        tenant = cast(TokenUser, self.request.user).tenant
        visible = Q(tenant=tenant)
        if tenant.slug == settings.DEFAULT_TENANT_SLUG:
            visible |= Q(tenant__isnull=True)
        return InboundFailure.objects.filter(visible)


class InboundFailureListView(_InboundFailures, generics.ListAPIView):
    filterset_fields = ["task_name", "queue", "error_code", "dead_lettered"]
    ordering_fields = ["id", "created_at"]


class InboundFailureDetailView(_InboundFailures, generics.RetrieveAPIView):
    pass
