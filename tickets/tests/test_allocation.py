"""Allocation of stored tickets: the jobs, the waking of waiting tickets, the API, and its query bound."""

from __future__ import annotations

from functools import partial

from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.services import Actor
from role.services import role_member_sync
from role.tests.factories import RoleFactory, user_role_data
from task.models import Task, TaskItem
from task.tests.factories import published_setup
from tickets import services, tasks
from tickets.models import AllocationState, Ticket
from tickets.services import ticket_allocate
from tickets.tasks import allocate_waiting_tickets_job, create_task_for_ticket_job, receive_ticket_job
from tickets.tests.factories import TicketFactory, ticket_data
from workflow.services import workflow_publish
from workflow.tests.factories import three_step_workflow
from workflow_api.core.messaging import INTERNAL_QUEUE
from workflow_api.core.models import InboundFailure, OutboxMessage
from workflow_api.testing.tokens import admin_token

WAKE = "core.tickets_allocate_waiting"
URL = "/api/v1/tickets/"


def _matching(setup, **overrides):
    workflow = setup.workflow
    return ticket_data(
        department=workflow.department, category=workflow.category, sub_category=workflow.sub_category, **overrides
    )


def test_a_redelivered_ticket_still_has_one_task(tenant):
    setup = published_setup(tenant=tenant)
    payload = _matching(setup)

    receive_ticket_job.apply(args=[payload])
    receive_ticket_job.apply(args=[payload])
    receive_ticket_job.apply(args=[{**payload, "subject": "Edited"}])

    ticket = Ticket.objects.get()
    assert ticket.allocation_state == AllocationState.ALLOCATED
    assert Task.objects.filter(ticket=ticket).count() == 1
    assert TaskItem.objects.count() == 1


def test_create_task_for_ticket_allocates_a_stored_ticket_once(tenant):
    setup = published_setup(tenant=tenant)
    ticket = setup.ticket()

    first = create_task_for_ticket_job.apply(args=[ticket.pk]).get()
    second = create_task_for_ticket_job.apply(args=[ticket.pk]).get()

    assert (first, second) == ("allocated", "already_allocated")
    assert Task.objects.filter(ticket=ticket).count() == 1


def test_create_task_for_ticket_with_an_unknown_or_malformed_pk_is_an_inbound_failure(tenant):
    create_task_for_ticket_job.apply(args=[987654], task_id="bad-pk")
    create_task_for_ticket_job.apply(args=["12"], task_id="not-int")

    failures = dict(InboundFailure.objects.values_list("message_id", "error_code"))
    assert failures == {"bad-pk": "unknown_ticket", "not-int": "invalid_ticket_pk"}
    assert not Task.objects.exists()


def test_publishing_a_matching_workflow_wakes_the_waiting_ticket(tenant):
    waiting = TicketFactory.create(department="Facilities", category="Leaks", sub_category="")
    ticket_allocate(ticket_id=waiting.pk)
    setup = published_setup(tenant=tenant)
    workflow = three_step_workflow(
        owner=setup.owner, resolver=setup.resolver, department="Facilities", category="Leaks", sub_category=""
    )
    OutboxMessage.objects.filter(task_name=WAKE).delete()

    workflow_publish(workflow=workflow, actor=Actor.system())

    wake = OutboxMessage.objects.get(task_name=WAKE)
    assert (wake.queue, wake.args, wake.kwargs) == (INTERNAL_QUEUE, [], {"tenant_id": tenant.pk})
    assert allocate_waiting_tickets_job.apply(kwargs=wake.kwargs).get() == 1
    waiting.refresh_from_db()
    assert waiting.allocation_state == AllocationState.ALLOCATED
    assert Task.objects.get(ticket=waiting).workflow_id == workflow.pk


def test_a_member_joining_the_role_wakes_the_waiting_ticket(tenant):
    setup = published_setup(tenant=tenant, owner_users=())
    ticket = setup.ticket()
    ticket_allocate(ticket_id=ticket.pk)
    OutboxMessage.objects.filter(task_name=WAKE).delete()

    role_member_sync(payload=user_role_data(role_id=setup.owner.role_id, role_name=setup.owner.name, user_id=77))

    wake = OutboxMessage.objects.get(task_name=WAKE)
    assert wake.kwargs == {"tenant_id": tenant.pk}
    assert allocate_waiting_tickets_job.apply(kwargs=wake.kwargs).get() == 1
    assert TaskItem.objects.get(task__ticket=ticket).user_id == 77


def test_waking_walks_past_tickets_that_still_cannot_be_allocated_to_the_ones_behind_them(tenant, monkeypatch):
    # Pages of 3: the first two pages hold only tickets no workflow matches.
    monkeypatch.setattr(tasks, "tickets_waiting", partial(services.tickets_waiting, limit=3))
    setup = published_setup(tenant=tenant)
    stuck = TicketFactory.create_batch(6, department="Nowhere", category="Nothing")
    matching = [
        TicketFactory.create(
            department=setup.workflow.department,
            category=setup.workflow.category,
            sub_category=setup.workflow.sub_category,
        )
        for _ in range(2)
    ]

    assert allocate_waiting_tickets_job.apply(kwargs={"tenant_id": tenant.pk}).get() == 2

    assert all(Task.objects.filter(ticket=ticket).exists() for ticket in matching)
    assert set(Ticket.objects.filter(pk__in=[t.pk for t in stuck]).values_list("allocation_state", flat=True)) == {
        AllocationState.UNALLOCATED
    }


def test_nothing_is_woken_when_no_ticket_waits(tenant):
    setup = published_setup(tenant=tenant)

    role_member_sync(payload=user_role_data(role_id=setup.owner.role_id, role_name=setup.owner.name, user_id=78))

    assert not OutboxMessage.objects.filter(task_name=WAKE).exists()


# --- The API ---------------------------------------------------------------------------


def test_an_admin_allocates_a_waiting_ticket_and_its_detail_lists_the_task(admin_client, tenant):
    setup = published_setup(tenant=tenant, owner_users=())
    ticket = setup.ticket()
    ticket_allocate(ticket_id=ticket.pk)
    refused = admin_client.post(f"{URL}{ticket.ticket_number}/allocate/")
    from task.tests.factories import members

    members(setup.owner, 55)
    response = admin_client.post(f"{URL}{ticket.ticket_number}/allocate/")

    assert refused.status_code == 200
    assert (refused.json()["allocated"], refused.json()["tasks"]) == (False, [])
    assert refused.json()["allocation_reason"].startswith("nobody active holds the role")
    task = Task.objects.get(ticket=ticket)
    assert response.status_code == 200
    assert (response.json()["allocated"], response.json()["allocation_reason"]) == (True, None)
    assert response.json()["tasks"] == [task.pk]
    assert admin_client.get(f"{URL}{ticket.ticket_number}/").json()["tasks"] == [task.pk]


def test_allocating_needs_an_admin(user_client, tenant):
    ticket = TicketFactory.create()

    response = user_client.post(f"{URL}{ticket.ticket_number}/allocate/")

    assert response.status_code == 403
    assert Ticket.objects.get().allocation_state == AllocationState.PENDING


def test_allocating_another_tenants_ticket_is_not_found(api_client, tenant, other_tenant):
    ticket = TicketFactory.create(tenant=other_tenant)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {admin_token()}")

    response = api_client.post(f"{URL}{ticket.ticket_number}/allocate/")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


# --- Bounded cost ----------------------------------------------------------------------


def _intake_queries(setup) -> int:
    with CaptureQueriesContext(connection) as captured:
        receive_ticket_job.apply(args=[_matching(setup)])
    assert Task.objects.filter(ticket__ticket_number=Ticket.objects.latest("id").ticket_number).count() == 1
    return len(captured.captured_queries)


# ~20 statements today (ticket insert, match, roles and members, two rotation upserts, task, item,
# history, outbox, one audit batch, counters); none depends on the data size.
INTAKE_QUERY_BOUND = 24


def test_intake_runs_the_same_bounded_number_of_queries_however_many_workflows_and_members(
    tenant, django_assert_max_num_queries
):
    small = published_setup(tenant=tenant, owner_users=(1,), coordinator_users=(9,))
    # The first delivery ever also creates the message counters and rotation pointers.
    _intake_queries(small)
    small_count = _intake_queries(small)

    # 19 more published workflows, 50 unrelated roles, and 50 members in each role the ticket touches.
    RoleFactory.create_batch(50, tenant=tenant)
    for _ in range(19):
        publish = three_step_workflow(owner=small.owner, resolver=small.resolver)
        workflow_publish(workflow=publish, actor=Actor.system())
    from task.tests.factories import members

    members(small.owner, *range(1000, 1049))
    members(small.coordinator, *range(2000, 2049))
    with django_assert_max_num_queries(INTAKE_QUERY_BOUND):
        receive_ticket_job.apply(args=[_matching(small)])
    large_count = _intake_queries(small)

    assert small_count == large_count
    assert small_count <= INTAKE_QUERY_BOUND
