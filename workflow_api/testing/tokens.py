"""Tokens as the auth service issues them, for tests."""

from __future__ import annotations

import time
from typing import Any

import jwt
from django.conf import settings


def make_token(
    *,
    user_id: Any = 21,
    roles: Any = None,
    tenant: str | None = None,
    exp_in: int = 3600,
    key: str | None = None,
    algorithm: str = "HS256",
    **claims: Any,
) -> str:
    payload: dict[str, Any] = {
        "user_id": user_id,
        "email": "li.wei@example.com",
        "username": "li.wei",
        "full_name": "Li Wei",
        "roles": roles if roles is not None else [{"system": "tts", "role": "Asset Manager"}],
        "exp": int(time.time()) + exp_in,
    }
    if tenant is not None:
        payload["tenant"] = tenant
    payload.update(claims)
    return jwt.encode(payload, key or settings.JWT_SIGNING_KEY, algorithm=algorithm)


def admin_token(**kwargs: Any) -> str:
    kwargs.setdefault("roles", ["tts:Admin"])
    return make_token(**kwargs)
