"""Authentication with the auth service's JWTs, and the admin permission.

Tokens are HS256, signed with the shared JWT_SIGNING_KEY, read from the
`Authorization: Bearer` header or the HTTP-only `access_token` cookie. Only
HS256 is accepted (so `alg: none` and other algorithms are refused); `exp` and
an integer `user_id` are required. `roles` may be a list of
`{"system": "tts", "role": "Admin"}` objects or of `"tts:Admin"` strings; both
become the same set of `"system:Role"` names. A cookie-authenticated unsafe
request must also pass Django's CSRF check, exactly as a session would.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import jwt
from django.conf import settings
from django.middleware.csrf import CsrfViewMiddleware
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from workflow_api.core.errors import ErrorCode
from workflow_api.core.models import Tenant
from workflow_api.core.tenancy import UnknownTenant, tenant_from_slug


@dataclass(frozen=True)
class TokenUser:
    """The caller, as the token describes them. Not a database row."""

    user_id: int
    tenant: Tenant
    email: str = ""
    username: str = ""
    full_name: str = ""
    roles: frozenset[str] = field(default_factory=frozenset)

    is_authenticated = True
    is_active = True
    is_anonymous = False

    @property
    def pk(self) -> int:
        return self.user_id

    @property
    def id(self) -> int:
        return self.user_id

    @property
    def display_name(self) -> str:
        return self.full_name or self.username or self.email or f"user {self.user_id}"

    def has_role(self, system_role: str) -> bool:
        return system_role in self.roles

    @property
    def is_engine_admin(self) -> bool:
        return self.has_role(settings.ADMIN_ROLE)


def normalise_roles(raw: Any) -> frozenset[str]:
    """Both role forms of the contract as one set of "system:Role" strings."""
    if raw is None:
        return frozenset()
    if not isinstance(raw, list):
        raise ValueError("roles must be a list")
    roles: set[str] = set()
    for item in raw:
        if isinstance(item, str) and ":" in item:
            system, _, role = item.partition(":")
        elif isinstance(item, dict) and isinstance(item.get("system"), str) and isinstance(item.get("role"), str):
            system, role = item["system"], item["role"]
        else:
            raise ValueError(f"unreadable role entry {item!r}")
        if not system or not role:
            raise ValueError(f"unreadable role entry {item!r}")
        roles.add(f"{system}:{role}")
    return frozenset(roles)


class TokenError(exceptions.AuthenticationFailed):
    pass


def decode_access_token(token: str) -> dict[str, Any]:
    """Verify signature, algorithm and expiry; raise TokenError otherwise."""
    try:
        claims = jwt.decode(
            token,
            settings.JWT_SIGNING_KEY,
            algorithms=["HS256"],
            options={"require": ["exp", "user_id"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenError("Token has expired.", code=ErrorCode.TOKEN_EXPIRED) from exc
    except jwt.MissingRequiredClaimError as exc:
        raise TokenError(f"Token is missing the {exc.claim!r} claim.") from exc
    except jwt.InvalidTokenError as exc:
        raise TokenError(f"Invalid token: {exc}.") from exc
    # A refresh token from the standalone login is not an access token.
    token_type = claims.get("token_type")
    if token_type is not None and token_type != "access":
        raise TokenError("Token is not an access token.")
    user_id = claims.get("user_id")
    if isinstance(user_id, bool) or not isinstance(user_id, int):
        raise TokenError("Token claim 'user_id' must be an integer.")
    return claims


def user_from_claims(claims: dict[str, Any]) -> TokenUser:
    try:
        roles = normalise_roles(claims.get("roles"))
    except ValueError as exc:
        raise TokenError(f"Token claim 'roles' is malformed: {exc}.") from exc
    tenant_slug = claims.get("tenant")
    if tenant_slug is not None and not isinstance(tenant_slug, str):
        raise TokenError("Token claim 'tenant' must be a string.")
    try:
        tenant = tenant_from_slug(tenant_slug)
    except UnknownTenant as exc:
        raise TokenError(str(exc)) from exc
    return TokenUser(
        user_id=claims["user_id"],
        tenant=tenant,
        email=str(claims.get("email") or ""),
        username=str(claims.get("username") or ""),
        full_name=str(claims.get("full_name") or ""),
        roles=roles,
    )


class _CsrfCheck(CsrfViewMiddleware):
    def _reject(self, request: Any, reason: str) -> str:  # type: ignore[override]
        return reason


class JWTAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[TokenUser, str] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        from_cookie = False
        if header:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer":
                return None
            token = token.strip()
            if not token:
                raise TokenError("Authorization header has no token.")
        else:
            token = request.COOKIES.get(settings.JWT_ACCESS_COOKIE, "")
            if not token:
                return None
            from_cookie = True

        user = user_from_claims(decode_access_token(token))
        if from_cookie:
            self._enforce_csrf(request)
        return user, token

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'

    @staticmethod
    def _enforce_csrf(request: Request) -> None:
        check = _CsrfCheck(lambda _request: None)  # type: ignore[arg-type,return-value]
        check.process_request(request)
        reason = check.process_view(request, None, (), {})  # type: ignore[arg-type]
        if reason:
            raise exceptions.PermissionDenied(f"CSRF failed: {reason}", code=ErrorCode.CSRF_FAILED)


def is_engine_admin(user: Any) -> bool:
    return bool(getattr(user, "is_engine_admin", False))


class IsEngineAdmin(BasePermission):
    """The caller holds the `tts:Admin` role (settings.ADMIN_ROLE)."""

    message = "This action needs the tts:Admin role."

    def has_permission(self, request: Request, view: Any) -> bool:
        return is_engine_admin(request.user)
