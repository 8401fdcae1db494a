"""What the notification service and the helpdesk receive, read off the real RabbitMQ queues.

Two tickets are allocated; one is worked through to completion, the other is
escalated and then transferred. After the outbox relay, the queues must hold
exactly the contract's messages (names, argument shapes, Celery protocol-2
headers whose id is the outbox row's message id), once each.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.conf import settings
from kombu import Connection

from audit.services import Actor
from role.tests.factories import RoleFactory
from step.models import Step
from task import services
from task.models import Task, TaskItem
from task.tests.factories import members, published_setup
from task.tests.test_actions import caller, holder, owner_of, started, the_ticket, tid
from workflow.services import workflow_publish
from workflow_api.core.messaging import contract_queue
from workflow_api.core.models import OutboxMessage, Tenant
from workflow_api.core.outbox import outbox_relay
from workflow_api.testing.worker import drain, purge

pytestmark = [
    pytest.mark.broker,
    pytest.mark.xdist_group("broker"),
    pytest.mark.django_db(transaction=True),
]

ASSIGNMENT = "notifications.send_assignment_notification"
ESCALATION = "notifications.send_escalation_notification"
TRANSFER = "notifications.send_task_transfer_notification"
STATUS = "send_ticket_status"
ESCALATION_KEYS = {
    "from_user_id",
    "to_user_id",
    "from_ticket_number",
    "to_ticket_number",
    "task_title",
    "escalated_from_role",
    "escalated_to_role",
    "escalation_reason",
    "escalated_by_id",
    "escalated_by_name",
}


def _wire(message: Any) -> tuple[str, str, list[Any], dict[str, Any]]:
    """(task name, id, args, kwargs) of a Celery protocol-2 message, from its headers and raw JSON body."""
    args, kwargs, embed = json.loads(message.body)
    assert set(embed) >= {"callbacks", "errbacks", "chain", "chord"}
    return message.headers["task"], message.headers["id"], args, kwargs


def test_the_real_queues_hold_exactly_the_contracts_notifications_and_ticket_statuses_once_each(
    tenant: Tenant, postgres: None, broker_url: str
):
    inapp, status_queue = settings.INAPP_NOTIFICATION_QUEUE, settings.TICKET_STATUS_QUEUE
    with Connection(broker_url) as conn:
        for name in (inapp, status_queue):
            contract_queue(name)(conn.default_channel).declare()
    purge(broker_url, (inapp, status_queue))

    setup = published_setup(tenant=tenant, owner_users=(101, 102, 103), resolver_users=(201,))
    supervisors = RoleFactory.create(tenant=tenant, name="Supervisor")
    members(supervisors, 501)
    Step.objects.filter(workflow=setup.workflow, key="triage").update(escalation_role=supervisors)
    workflow_publish(workflow=setup.workflow, actor=Actor.system())

    # Ticket one: Triage -> Resolve -> Finalize -> completed.
    done = started(setup)
    number = the_ticket(done).ticket_number
    triager = holder(done)
    services.task_transition(
        task_id=done.pk, user=caller(tenant, triager), transition_id=tid(done, "Submit"), notes="checked"
    )
    services.task_transition(task_id=done.pk, user=caller(tenant, 201), transition_id=tid(done, "Approve"), notes="ok")
    finisher = holder(done)
    services.task_transition(task_id=done.pk, user=caller(tenant, finisher), transition_id=None, notes="closed")
    assert Task.objects.get(pk=done.pk).status == "completed"

    # Ticket two: escalated to the supervisor, then moved on by the ticket owner.
    moved = started(setup)
    other = the_ticket(moved).ticket_number
    escalating = holder(moved)
    services.task_escalate(task_id=moved.pk, user=caller(tenant, escalating, name="Ana Cruz"), reason="Too hard")
    target = next(user for user in (101, 102, 103) if user != escalating)
    owner = owner_of(moved)
    services.task_transfer(task_id=moved.pk, user=caller(tenant, owner, name="Coord"), to_user_id=target, notes="cover")

    rows = {str(row.message_id): row for row in OutboxMessage.objects.all()}
    result = outbox_relay()
    assert (result.sent, result.failed) == (len(rows), False)

    notifications = drain(broker_url, inapp, expect=len([r for r in rows.values() if r.queue == inapp]), timeout=10)
    notifications += drain(broker_url, inapp, timeout=0.5)
    statuses = drain(broker_url, status_queue, expect=2, timeout=10)
    statuses += drain(broker_url, status_queue, timeout=0.5)
    wire = [_wire(message) for message in notifications + statuses]

    # Every message is its outbox row, published once, under the row's message id.
    assert sorted(message_id for _name, message_id, _args, _kwargs in wire) == sorted(rows)
    assert all(
        (name, args, kwargs) == (rows[message_id].task_name, rows[message_id].args, rows[message_id].kwargs)
        for name, message_id, args, kwargs in wire
    )
    assert all(m.properties["correlation_id"] == m.headers["id"] for m in notifications + statuses)
    assert all(m.content_type == "application/json" for m in notifications + statuses)

    by_name: dict[str, list[tuple[list[Any], dict[str, Any]]]] = {}
    for name, _message_id, args, kwargs in wire:
        by_name.setdefault(name, []).append((args, kwargs))
    assert set(by_name) == {ASSIGNMENT, ESCALATION, TRANSFER, STATUS}

    title, other_title = the_ticket(done).subject, the_ticket(moved).subject
    admin_role = setup.owner.name
    assert sorted(by_name[ASSIGNMENT]) == sorted(
        [
            ([triager, number, title, admin_role], {}),
            ([201, number, title, setup.resolver.name], {}),
            ([finisher, number, title, admin_role], {}),
            ([escalating, other, other_title, admin_role], {}),
            ([501, other, other_title, "Supervisor"], {}),
            # A transfer moves the escalated item, which keeps the role it was escalated to.
            ([target, other, other_title, "Supervisor"], {}),
        ]
    )
    assert all(
        [type(value) for value in args] == [int, str, str, str] and kwargs == {} for args, kwargs in by_name[ASSIGNMENT]
    )
    assert TaskItem.objects.count() == len(by_name[ASSIGNMENT])

    [(escalation_args, escalation)] = by_name[ESCALATION]
    assert escalation_args == []
    assert set(escalation) == ESCALATION_KEYS
    assert escalation == {
        "from_user_id": escalating,
        "to_user_id": 501,
        "from_ticket_number": other,
        "to_ticket_number": other,
        "task_title": other_title,
        "escalated_from_role": admin_role,
        "escalated_to_role": "Supervisor",
        "escalation_reason": "Too hard",
        "escalated_by_id": escalating,
        "escalated_by_name": "Ana Cruz",
    }

    assert by_name[TRANSFER] == [([501, target, other, other, other_title, owner, "Coord", "cover"], {})]

    # The helpdesk hears In Progress once and Resolved once, for the completed ticket only.
    assert [name for name, *_rest in wire[len(notifications) :]] == [STATUS, STATUS]
    assert by_name[STATUS] == [([number, "In Progress"], {}), ([number, "Resolved"], {})]

    # Relaying again sends nothing: each cause left exactly one message.
    assert outbox_relay().sent == 0
    assert drain(broker_url, inapp, timeout=0.3) == []
    assert drain(broker_url, status_queue, timeout=0.3) == []
