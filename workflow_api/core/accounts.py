"""Standalone login: tokens of the same shape the auth service issues.

In production the auth service issues tokens; these services let the engine
be used on its own (and in `make run`). A Django user's `user_id` claim is its
primary key; its roles are the `tts` roles it holds (role memberships with
that user id) plus `tts:Admin` for superusers.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.models import AbstractBaseUser, update_last_login
from django.db import transaction
from rest_framework_simplejwt.exceptions import TokenError as SimpleJwtTokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
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
    """A new refresh token (recorded as outstanding) and its access token, with the contract's claims.

    Both carry `user_id` (int), `email`, `username`, `full_name`, `roles`
    ("tts:Role" strings, read now) and `tenant`; the access token is what
    JWTAuthentication accepts, the refresh token only rotates.
    """
    refresh = RefreshToken.for_user(user)
    # simplejwt writes the id as a string; the contract's `user_id` is an int.
    refresh[jwt_settings.USER_ID_CLAIM] = user.pk
    refresh["email"] = getattr(user, "email", "")
    refresh["username"] = user.get_username()
    get_full_name = getattr(user, "get_full_name", None)
    refresh["full_name"] = get_full_name() if callable(get_full_name) else ""
    refresh["roles"] = _roles_for(user)
    refresh["tenant"] = settings.DEFAULT_TENANT_SLUG
    return TokenPair(access=str(refresh.access_token), refresh=str(refresh))


def _rejected(reason: object) -> ApiError:
    return ApiError(ErrorCode.AUTHENTICATION_FAILED, f"Refresh token rejected: {reason}", status_code=401)


def _valid_refresh_token(raw: str) -> RefreshToken:
    """Signature, expiry, token type and the blacklist checked; raises ApiError (401)."""
    try:
        return RefreshToken(raw)  # type: ignore[arg-type]
    except SimpleJwtTokenError as exc:
        raise _rejected(exc) from exc


def _blacklist_once(token: RefreshToken) -> None:
    """Blacklist the token; raise ApiError (401) if it already was.

    The outstanding-token row is locked, so of two concurrent refreshes (or a
    refresh and a logout) with one token, the second sees the first's
    blacklist entry. Call inside a transaction.
    """
    token.outstand()
    outstanding = OutstandingToken.objects.select_for_update().get(jti=token[jwt_settings.JTI_CLAIM])
    if BlacklistedToken.objects.filter(token=outstanding).exists():
        raise _rejected("Token is blacklisted")
    BlacklistedToken.objects.create(token=outstanding)


def auth_login(*, username: str, password: str) -> TokenPair:
    """Check the password and issue a token pair; audited. Raises ApiError (401)."""
    user = authenticate(username=username, password=password)
    if user is None or not user.is_active:
        raise ApiError(ErrorCode.AUTHENTICATION_FAILED, "Wrong username or password.", status_code=401)
    with transaction.atomic():
        pair = tokens_for_user(user)
        update_last_login(None, user)  # type: ignore[arg-type]  # the signal receiver ignores its sender
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
    """Rotate: the refresh token is blacklisted and a new pair, with the user's current roles, is returned.

    A refresh token works once: of two concurrent refreshes with the same
    token only one succeeds (see _blacklist_once). Raises ApiError
    (401) for an expired, blacklisted, forged or non-refresh token, or one
    whose user is gone or inactive.
    """
    token = _valid_refresh_token(refresh)
    with transaction.atomic():
        user = get_user_model().objects.filter(pk=token.get("user_id")).first()
        if user is None or not user.is_active:
            raise _rejected("the user no longer exists or is inactive")
        _blacklist_once(token)
        return tokens_for_user(user)


def auth_logout(*, refresh: str) -> None:
    """Blacklist the refresh token so it can never be used again; audited. Raises ApiError (401)."""
    token = _valid_refresh_token(refresh)
    user_id = token.get("user_id")
    with transaction.atomic():
        _blacklist_once(token)
        audit_append(
            tenant=default_tenant(),
            actor=Actor(id=user_id, name=str(token.get("username") or user_id)),
            action=AuditAction.USER_LOGGED_OUT,
            target_type="user",
            target_id=str(user_id),
            target_display=str(token.get("username") or ""),
        )
