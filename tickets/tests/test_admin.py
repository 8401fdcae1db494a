"""The ticket admin: searchable, filterable, read-only."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tickets.models import AllocationState
from tickets.services import ticket_receive
from tickets.tests.factories import TicketFactory, example_ticket

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, admin_user):
    client.force_login(admin_user)
    return client


def test_the_unallocated_filter_lists_only_tickets_that_could_not_be_allocated(staff_client, tenant):
    TicketFactory.create(ticket_number="TXWAIT")
    TicketFactory.create(
        ticket_number="TXSTUCK", allocation_state=AllocationState.UNALLOCATED, allocation_reason="No matching workflow"
    )

    response = staff_client.get(reverse("admin:tickets_ticket_changelist"), {"needs_allocation": "unallocated"})

    assert response.status_code == 200
    assert b"TXSTUCK" in response.content
    assert b"No matching workflow" in response.content
    assert b"TXWAIT" not in response.content


@pytest.mark.parametrize("query", ["TX20270304114522", "114522", "projector in room"])
def test_tickets_can_be_searched_by_number_or_subject(staff_client, tenant, query):
    ticket_receive(payload=example_ticket())
    TicketFactory.create(ticket_number="TXNOISE", subject="Unrelated")

    response = staff_client.get(reverse("admin:tickets_ticket_changelist"), {"q": query})

    assert b"TX20270304114522" in response.content
    assert b"TXNOISE" not in response.content


def test_a_ticket_page_shows_the_snapshot_and_cannot_be_edited(staff_client, tenant):
    ticket = ticket_receive(payload=example_ticket()).ticket

    response = staff_client.get(reverse("admin:tickets_ticket_change", args=[ticket.pk]))

    assert response.status_code == 200
    assert b"&quot;serial_number&quot;: &quot;EPL520-40917&quot;" in response.content
    assert b'name="_save"' not in response.content
