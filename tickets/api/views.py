"""Ticket endpoints (api.md "Tickets").

Reads are open to any authenticated caller of the tenant. `POST` is the
queue's intake over HTTP, for services that cannot publish to RabbitMQ: it
needs tts:Admin, because it writes what the helpdesk alone should write, and
the services that use it call with an admin service token. Every lookup goes
through tickets.selectors with the caller's tenant, so another tenant's
ticket is a 404.
"""

from __future__ import annotations

from typing import Any, cast

from django.db.models import QuerySet
from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.services import Actor
from tickets import selectors
from tickets.api.filters import TicketFilter
from tickets.api.serializers import TicketDetailSerializer, TicketReceiveSerializer, TicketSerializer
from tickets.models import Ticket
from tickets.services import InvalidTicket, ticket_allocate, ticket_intake
from workflow_api.core.auth import IsEngineAdmin, TokenUser, is_engine_admin
from workflow_api.core.errors import ApiError, ErrorCode


class ReadAnyReceiveAdmin(BasePermission):
    message = IsEngineAdmin.message

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.method in SAFE_METHODS:
            return bool(request.user and request.user.is_authenticated)
        return is_engine_admin(request.user)


def _caller(request: Request) -> TokenUser:
    return cast(TokenUser, request.user)


class TicketListView(generics.ListAPIView):
    """The tenant's tickets (filters: status, department, priority, allocated); receive a ticket (tts:Admin)."""

    permission_classes = [ReadAnyReceiveAdmin]
    serializer_class = TicketSerializer
    filterset_class = TicketFilter
    ordering_fields = ["received_at", "updated_at", "ticket_number", "priority", "status"]
    ordering = ["-received_at"]

    def get_queryset(self) -> QuerySet[Ticket]:
        if getattr(self, "swagger_fake_view", False):  # schema generation has no caller
            return Ticket.objects.none()
        return selectors.ticket_list(tenant=_caller(self.request).tenant)

    @extend_schema(
        request=TicketReceiveSerializer,
        responses={201: TicketDetailSerializer, 200: TicketDetailSerializer},
        description="The queue's intake over HTTP: 201 when the ticket is new, 200 when it was stored already.",
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        body = TicketReceiveSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            result = ticket_intake(
                payload=body.validated_data["ticket_data"],
                tenant=_caller(request).tenant,
                actor=Actor.of(request.user),
            )
        except InvalidTicket as exc:
            errors = {field: [problem] for field, problem in exc.errors.items()}
            raise ApiError(
                ErrorCode.VALIDATION_ERROR, str(exc), errors={"ticket_data": errors}, status_code=400
            ) from exc
        ticket = result.allocation.ticket if result.allocation else result.received.ticket
        return Response(
            TicketDetailSerializer(ticket).data,
            status=status.HTTP_201_CREATED if result.received.created else status.HTTP_200_OK,
        )


class TicketDetailView(generics.RetrieveAPIView):
    """One ticket with the helpdesk's whole ticket_data."""

    serializer_class = TicketDetailSerializer
    filter_backends: list[Any] = []

    def get_object(self) -> Ticket:
        ticket = selectors.ticket_get(tenant=_caller(self.request).tenant, ticket_number=self.kwargs["ticket_number"])
        if ticket is None:
            raise Http404
        return ticket


class TicketAllocateView(APIView):
    """Re-run allocation for a ticket (admin): 200 with the ticket, allocated or with the reason it is not."""

    permission_classes = [IsEngineAdmin]

    @extend_schema(request=None, responses={200: TicketDetailSerializer})
    def post(self, request: Request, ticket_number: str) -> Response:
        ticket = selectors.ticket_get(tenant=_caller(request).tenant, ticket_number=ticket_number)
        if ticket is None:
            raise Http404
        result = ticket_allocate(ticket_id=ticket.pk, actor=Actor.of(request.user))
        return Response(TicketDetailSerializer(result.ticket).data)
