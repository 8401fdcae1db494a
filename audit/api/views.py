from __future__ import annotations

from rest_framework import generics

from audit.api.filters import AuditEventFilter
from audit.api.serializers import AuditEventSerializer
from audit.models import AuditEvent
from workflow_api.core.auth import IsEngineAdmin
from workflow_api.core.tenancy import TenantScopedMixin


class _AuditEvents(TenantScopedMixin, generics.GenericAPIView):
    """The caller's tenant's audit trail, for admins. Read-only: there is nothing to write."""

    permission_classes = [IsEngineAdmin]
    serializer_class = AuditEventSerializer
    queryset = AuditEvent.objects.all()


class AuditEventListView(_AuditEvents, generics.ListAPIView):
    filterset_class = AuditEventFilter
    ordering_fields = ["id", "created_at"]
    ordering = ["-id"]


class AuditEventDetailView(_AuditEvents, generics.RetrieveAPIView):
    pass
