"""Standalone login: tokens of the same shape the auth service issues.

In production the auth service issues tokens; these services let the engine
be used on its own (and in `make run`). A Django user's `user_id` claim is its
primary key; its roles are the `tts` roles it holds (role memberships with
that user id) plus `tts:Admin` for superusers.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ObjectDoesNotExist
from django.db import transaction
from rest_framework.exceptions import AuthenticationFailed, ValidationError
from rest_framework_simplejwt.exceptions import TokenError as SimpleJwtTokenError
from rest_framework_simplejwt.serializers import TokenRefreshSerializer
from rest_framework_simplejwt.tokens import RefreshToken

from audit.models import AuditAction
from audit.services import Actor, audit_append
from workflow_api.core.errors import ApiError, ErrorCode
from workflow_api.core.tenancy import default_tenant


@dataclass(frozen=True)
class TokenPair:
    access: str
    refresh: str


def _roles_for(user: AbstractBaseUser) -> list[str]:
    from role.selectors import role_names_for_user

    tenant = default_tenant()
    roles = {f"tts:{name}" for name in role_names_for_user(tenant=tenant, user_id=user.pk)}
    if getattr(user, "is_superuser", False):
        roles.add(settings.ADMIN_ROLE)
    return sorted(roles)


def tokens_for_user(user: AbstractBaseUser) -> TokenPair:
    refresh = RefreshToken.for_user(user)
    refresh["email"] = getattr(user, "email", "")
    refresh["username"] = user.get_username()
    refresh["full_name"] = user.get_full_name() if hasattr(user, "get_full_name") else ""
    refresh["roles"] = _roles_for(user)
    refresh["tenant"] = settings.DEFAULT_TENANT_SLUG
    return TokenPair(access=str(refresh.access_token), refresh=str(refresh))


def auth_login(*, username: str, password: str) -> TokenPair:
    """Check the password and issue a token pair; audited. Raises ApiError (401)."""
    user = authenticate(username=username, password=password)
    if user is None or not user.is_active:
        raise ApiError(ErrorCode.AUTHENTICATION_FAILED, "Wrong username or password.", status_code=401)
    pair = tokens_for_user(user)
    audit_append(
        tenant=default_tenant(),
        actor=Actor(id=user.pk, name=user.get_username()),
        action=AuditAction.USER_LOGGED_IN,
        target_type="user",
        target_id=user.pk,
        target_display=user.get_username(),
    )
    return pair


def auth_refresh(*, refresh: str) -> TokenPair:
    """Rotate: the old refresh token is blacklisted, a new pair is returned.

    Raises ApiError (401) for an expired, blacklisted or forged token, or one
    whose user is gone or inactive.
    """
    serializer = TokenRefreshSerializer(data={"refresh": refresh})
    try:
        with transaction.atomic():
            serializer.is_valid(raise_exception=True)
    except (SimpleJwtTokenError, ObjectDoesNotExist, AuthenticationFailed, ValidationError) as exc:
        raise ApiError(ErrorCode.AUTHENTICATION_FAILED, f"Refresh token rejected: {exc}", status_code=401) from exc
    return TokenPair(access=serializer.validated_data["access"], refresh=serializer.validated_data["refresh"])


def auth_logout(*, refresh: str) -> None:
    """Blacklist the refresh token so it can never be used again."""
    try:
        token = RefreshToken(refresh)
        user_id = token.get("user_id")
        token.blacklist()
    except SimpleJwtTokenError as exc:
        raise ApiError(ErrorCode.AUTHENTICATION_FAILED, f"Refresh token rejected: {exc}", status_code=401) from exc
    audit_append(
        tenant=default_tenant(),
        actor=Actor(id=user_id, name=str(user_id)),
        action=AuditAction.USER_LOGGED_OUT,
        target_type="user",
        target_id=str(user_id),
    )
