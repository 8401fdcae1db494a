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
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from workflow_api.core.errors import WWW_AUTHENTICATE, ErrorCode
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


def enforce_csrf(request: Request) -> None:
    """Django's CSRF check for a request authenticated by a cookie; raises 403 csrf_failed.

    API views are csrf_exempt (a Bearer token cannot be sent by another site),
    so whatever reads a credential from a cookie must call this itself.
    """
    check = _CsrfCheck(lambda _request: None)  # type: ignore[arg-type,return-value]
    check.process_request(request)
    reason = check.process_view(request, None, (), {})  # type: ignore[arg-type]
    if reason:
        raise exceptions.PermissionDenied(f"CSRF failed: {reason}", code=ErrorCode.CSRF_FAILED)


class JWTAuthentication(BaseAuthentication):
    """The auth service's access token, from the Bearer header or else the access_token cookie.

    A header that is not `Bearer` is left to other authenticators. Raises
    TokenError (401) for any token that is present but not acceptable, and
    403 csrf_failed for a cookie-authenticated unsafe request without a valid
    CSRF token.
    """

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
            enforce_csrf(request)
        return user, token

    def authenticate_header(self, request: Request) -> str:
        return WWW_AUTHENTICATE


class JWTAuthenticationScheme(OpenApiAuthenticationExtension):
    """Tells the OpenAPI schema how JWTAuthentication is used: a Bearer header or the cookie."""

    target_class = JWTAuthentication
    name = ["bearerAuth", "cookieAuth"]

    def get_security_requirement(self, auto_schema: Any) -> list[dict[str, list[Any]]]:
        return [{"bearerAuth": []}, {"cookieAuth": []}]  # either one

    def get_security_definition(self, auto_schema: Any) -> list[dict[str, Any]]:
        return [
            {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
            {"type": "apiKey", "in": "cookie", "name": settings.JWT_ACCESS_COOKIE},
        ]


def is_engine_admin(user: Any) -> bool:
    return bool(getattr(user, "is_engine_admin", False))


class IsEngineAdmin(BasePermission):
    """The caller holds the `tts:Admin` role (settings.ADMIN_ROLE)."""

    message = "This action needs the tts:Admin role."

    def has_permission(self, request: Request, view: Any) -> bool:
        return is_engine_admin(request.user)
