"""Read-only role endpoints (api.md "Roles"): roles come from the auth service.

Every query goes through role.selectors with the caller's tenant, so a role of
another tenant, or a deleted one, is a 404.
"""

from __future__ import annotations

from typing import Any, cast

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import generics
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from role import selectors
from role.api.filters import RoleFilter, RoleMemberFilter
from role.api.serializers import (
    RoleMemberSerializer,
    RoleSerializer,
    RoundRobinQuerySerializer,
    RoundRobinSerializer,
)
from role.models import Role, RoleMember
from workflow_api.core.auth import TokenUser
from workflow_api.core.errors import ApiError, ErrorCode


def _caller(request: Request) -> TokenUser:
    return cast(TokenUser, request.user)


class _TenantRoles(generics.GenericAPIView):
    def tenant_roles(self) -> QuerySet[Role]:
        if getattr(self, "swagger_fake_view", False):  # schema generation has no caller
            return Role.objects.none()
        return selectors.role_list(tenant=_caller(self.request).tenant)


class RoleListView(_TenantRoles, generics.ListAPIView):
    serializer_class = RoleSerializer
    filterset_class = RoleFilter
    ordering_fields = ["name", "role_id", "member_count", "active_member_count"]

    def get_queryset(self) -> QuerySet[Role]:
        return self.tenant_roles()


class RoleDetailView(_TenantRoles, generics.RetrieveAPIView):
    serializer_class = RoleSerializer
    lookup_field = "role_id"

    def get_queryset(self) -> QuerySet[Role]:
        return self.tenant_roles()


class RoleMemberListView(_TenantRoles, generics.ListAPIView):
    serializer_class = RoleMemberSerializer
    filterset_class = RoleMemberFilter
    ordering_fields = ["user_id", "full_name", "assigned_at"]

    def get_queryset(self) -> QuerySet[RoleMember]:
        if getattr(self, "swagger_fake_view", False):
            return RoleMember.objects.none()
        role = get_object_or_404(self.tenant_roles(), role_id=self.kwargs["role_id"])
        return selectors.role_members(role=role)


class RoundRobinView(APIView):
    @extend_schema(parameters=[RoundRobinQuerySerializer], responses=RoundRobinSerializer)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        query = RoundRobinQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        role_name = query.validated_data["role_name"]
        user_ids = selectors.round_robin_preview(tenant=_caller(request).tenant, role_name=role_name)
        if user_ids is None:
            raise ApiError(ErrorCode.NOT_FOUND, f"No role named {role_name!r}.", status_code=404)
        return Response(RoundRobinSerializer({"role_name": role_name, "user_ids": user_ids}).data)
