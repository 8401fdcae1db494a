"""Ticket messages and stored tickets for the tests."""

from __future__ import annotations

import copy
import itertools
import json
from pathlib import Path
from typing import Any

import factory

from tickets.models import AllocationState, Ticket, TicketPriority
from workflow_api.core.tenancy import default_tenant

EXAMPLE_TICKET: dict[str, Any] = json.loads((Path(__file__).parent / "fixtures" / "hdts_ticket.json").read_text())

_numbers = itertools.count(1)


def example_ticket() -> dict[str, Any]:
    """The helpdesk's example ticket, a fresh copy every time."""
    return copy.deepcopy(EXAMPLE_TICKET)


def ticket_data(**overrides: Any) -> dict[str, Any]:
    """A valid ticket_data with its own ticket number; overrides replace (None keeps the key as null)."""
    payload = example_ticket()
    payload["ticket_number"] = f"TX2027{next(_numbers):010d}"
    payload.update(overrides)
    return payload


class TicketFactory(factory.django.DjangoModelFactory[Ticket]):
    class Meta:
        model = Ticket

    tenant = factory.LazyFunction(default_tenant)
    ticket_number = factory.Sequence(lambda n: f"TF{n:08d}")
    subject = factory.Faker("sentence")
    status = "Open"
    priority = TicketPriority.MEDIUM
    department = "IT Department"
    category = "IT Support"
    sub_category = "Hardware"
    allocation_state = AllocationState.PENDING
    snapshot = factory.LazyAttribute(
        lambda o: {
            "ticket_number": o.ticket_number,
            "subject": o.subject,
            "status": o.status,
            "department": o.department,
            "category": o.category,
            "sub_category": o.sub_category,
        }
    )
