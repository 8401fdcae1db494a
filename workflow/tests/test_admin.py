"""The designer's admin: edit a draft through the services, see its problems, publish, compare, migrate."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditAction, AuditEvent
from role.tests.factories import RoleFactory
from step.models import Step, Transition
from task.models import Task
from workflow.admin import WorkflowAdmin
from workflow.models import Workflow, WorkflowStatus, WorkflowVersion
from workflow.services import Graph, GraphEdge, GraphNode, workflow_graph_replace, workflow_publish
from workflow.tests.factories import StepFactory, TaskFactory, WorkflowFactory, three_step_workflow

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser(django_user_model):
    return django_user_model.objects.create_superuser(username="dana", email="dana@example.com", password="x" * 12)


@pytest.fixture
def designer(client, superuser):
    client.force_login(superuser)
    return client


def change_url(workflow: Workflow) -> str:
    return reverse("admin:workflow_workflow_change", args=[workflow.pk])


def page_data(response) -> dict[str, Any]:
    """What the browser submits for the page as loaded: every form and inline field, unchanged."""
    data: dict[str, Any] = {}

    def put(bound_form) -> None:
        for name, field in bound_form.fields.items():
            if field.disabled:
                continue
            value = bound_form[name].value()
            if value is True:
                data[bound_form.add_prefix(name)] = "on"
            elif value is not None and value is not False:  # 0 is a value, False an unticked box
                data[bound_form.add_prefix(name)] = value

    put(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        put(inline.formset.management_form)
        for form in inline.formset.forms:
            put(form)
    return data


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def actions_of(workflow: Workflow) -> list[str]:
    return list(
        AuditEvent.objects.filter(target_type="workflow", target_id=str(workflow.pk))
        .order_by("id")
        .values_list("action", flat=True)
    )


# --- the change page -------------------------------------------------------------------


def test_the_change_page_draws_the_draft_graph_and_says_it_can_be_published(designer):
    workflow = three_step_workflow(name="Asset Check In")

    response = designer.get(change_url(workflow))

    page = response.content.decode()
    assert response.status_code == 200
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="workflow-graph"' in page
    for name in ("Triage", "Resolve", "Finalize", "Submit", "Approve", "Reject", "role: Asset Manager"):
        assert name in page
    assert 'id="problems-none"' in page
    assert f'name="loaded_edit_version" value="{workflow.edit_version}"' in page


def test_an_unpublishable_draft_shows_every_problem_with_its_code_and_step(designer):
    workflow = WorkflowFactory.create()
    StepFactory.create(workflow=workflow, name="Lonely step", role=None)

    page = designer.get(change_url(workflow)).content.decode()

    assert 'id="problems"' in page
    for code in ("no_start_step", "no_end_step", "missing_role"):
        assert f"<code>{code}</code>" in page
    assert "<td>Lonely step</td>" in page


def test_role_choices_are_the_workflows_tenants_live_roles_and_transition_ends_its_own_steps(
    designer, tenant, other_tenant
):
    workflow = three_step_workflow()
    RoleFactory.create(tenant=other_tenant, name="Foreign Role")
    RoleFactory.create(tenant=tenant, name="Deleted Role", deleted_at=timezone.now())
    StepFactory.create(name="Step of another workflow")

    page = designer.get(change_url(workflow)).content.decode()

    assert "Asset Manager (0 active)" in page
    assert "Foreign Role" not in page
    assert "Deleted Role" not in page
    assert "Step of another workflow" not in page


# --- adding and saving ---------------------------------------------------------------------


def test_adding_a_workflow_creates_a_draft_in_the_default_tenant_and_opens_its_page(designer, tenant):
    add_url = reverse("admin:workflow_workflow_add")
    data = page_data(designer.get(add_url))
    data.update({"name": "Access Request", "department": "IT Department", "category": "IT Support"})

    response = designer.post(add_url, data)

    workflow = Workflow.objects.get(name="Access Request")
    assert response.status_code == 302
    assert response["Location"] == change_url(workflow)
    assert workflow.tenant == tenant
    assert workflow.status == WorkflowStatus.DRAFT
    assert actions_of(workflow) == [AuditAction.WORKFLOW_CREATED]


def test_a_designer_builds_the_graph_on_the_page_and_the_service_stores_it(designer, roles):
    workflow = WorkflowFactory.create()
    data = page_data(designer.get(change_url(workflow)))
    rows = [("Triage", roles["Admin"], True, False), ("Resolve", roles["Asset Manager"], False, False)]
    rows.append(("Finalize", roles["Admin"], False, True))
    for index, (name, role, is_start, is_end) in enumerate(rows):
        data[f"steps-{index}-name"] = name
        data[f"steps-{index}-role"] = role.pk
        if is_start:
            data[f"steps-{index}-is_start"] = "on"
        if is_end:
            data[f"steps-{index}-is_end"] = "on"

    saved = designer.post(change_url(workflow), {**data, "_continue": "1"})

    steps = {step.key: step for step in Step.objects.filter(workflow=workflow)}
    assert saved.status_code == 302
    assert sorted(steps) == ["finalize", "resolve", "triage"]
    assert steps["resolve"].role == roles["Asset Manager"]

    data = page_data(designer.get(change_url(workflow)))
    for index, (source, name, target) in enumerate(
        (("triage", "Submit", "resolve"), ("resolve", "Approve", "finalize"))
    ):
        data[f"transitions-{index}-from_step"] = steps[source].pk
        data[f"transitions-{index}-name"] = name
        data[f"transitions-{index}-to_step"] = steps[target].pk

    designer.post(change_url(workflow), {**data, "_continue": "1"})

    transitions = Transition.objects.filter(workflow=workflow).values_list("from_step__key", "name", "to_step__key")
    assert sorted(transitions) == [("resolve", "Approve", "finalize"), ("triage", "Submit", "resolve")]
    assert actions_of(workflow) == [AuditAction.WORKFLOW_GRAPH_REPLACED] * 2
    assert 'id="problems-none"' in designer.get(change_url(workflow)).content.decode()


def test_a_saved_draft_with_problems_is_kept_and_the_designer_is_warned(designer, roles):
    workflow = WorkflowFactory.create()
    data = page_data(designer.get(change_url(workflow)))
    data.update({"steps-0-name": "Triage", "steps-0-role": roles["Admin"].pk, "steps-0-is_start": "on"})

    response = designer.post(change_url(workflow), {**data, "_continue": "1"}, follow=True)

    assert Step.objects.filter(workflow=workflow, key="triage").exists()
    assert any("1 problem(s) block publishing" in message for message in messages_of(response))
    assert "<code>no_end_step</code>" in response.content.decode()


def test_a_graph_the_service_refuses_becomes_a_form_error_and_nothing_is_saved(designer):
    workflow = three_step_workflow(name="Asset Check Out")
    data = page_data(designer.get(change_url(workflow)))
    finalize = Step.objects.get(workflow=workflow, key="finalize")
    index = next(i for i in range(3) if str(data[f"steps-{i}-id"]) == str(finalize.pk))
    # Deleting a step that the Approve transition still uses leaves that transition dangling.
    data[f"steps-{index}-DELETE"] = "on"
    data["name"] = "Renamed in the same save"
    version_before, audit_before = workflow.edit_version, AuditEvent.objects.count()

    response = designer.post(change_url(workflow), data)

    page = response.content.decode()
    workflow.refresh_from_db()
    assert response.status_code == 200
    assert "The graph cannot be stored." in page
    assert "dangling_transition" in page
    assert workflow.name == "Asset Check Out"
    assert workflow.edit_version == version_before
    assert Step.objects.filter(pk=finalize.pk).exists()
    assert AuditEvent.objects.count() == audit_before


def test_slas_out_of_order_are_refused_as_a_form_error_and_nothing_is_saved(designer):
    workflow = three_step_workflow(description="original")
    data = page_data(designer.get(change_url(workflow)))
    version_before, audit_before = workflow.edit_version, AuditEvent.objects.count()

    response = designer.post(
        change_url(workflow), {**data, "sla_urgent": "9 00:00:00", "description": "changed in the same save"}
    )

    assert response.status_code == 200
    form = response.context["adminform"].form
    assert form.non_field_errors() == ["SLAs must satisfy urgent < high < medium < low."]
    assert "SLAs must satisfy urgent &lt; high &lt; medium &lt; low." in response.content.decode()
    workflow.refresh_from_db()
    assert (workflow.sla_urgent, workflow.description) == (timedelta(hours=4), "original")
    assert workflow.edit_version == version_before
    assert AuditEvent.objects.count() == audit_before


def test_a_new_workflow_with_slas_out_of_order_is_refused_as_a_form_error(designer):
    add_url = reverse("admin:workflow_workflow_add")
    data = page_data(designer.get(add_url))
    data.update({"name": "Upside down", "department": "IT", "category": "Access", "sla_low": "1:00:00"})

    response = designer.post(add_url, data)

    assert response.status_code == 200
    assert response.context["adminform"].form.non_field_errors() == ["SLAs must satisfy urgent < high < medium < low."]
    assert not Workflow.objects.filter(name="Upside down").exists()


def test_a_duplicate_name_is_refused_on_the_name_field(designer):
    WorkflowFactory.create(name="Taken")
    workflow = WorkflowFactory.create(name="Mine")
    data = {**page_data(designer.get(change_url(workflow))), "name": "Taken"}

    response = designer.post(change_url(workflow), data)

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["name"]
    workflow.refresh_from_db()
    assert workflow.name == "Mine"


def test_when_two_designers_save_the_same_workflow_the_second_save_is_refused(client, superuser, django_user_model):
    other = django_user_model.objects.create_superuser(username="lee", email="lee@example.com", password="y" * 12)
    workflow = three_step_workflow(description="original")
    first, second = client, type(client)()
    first.force_login(superuser)
    second.force_login(other)
    first_data = page_data(first.get(change_url(workflow)))
    second_data = page_data(second.get(change_url(workflow)))

    saved = first.post(change_url(workflow), {**first_data, "description": "first designer's text"})
    refused = second.post(change_url(workflow), {**second_data, "description": "second designer's text"})

    workflow.refresh_from_db()
    assert saved.status_code == 302
    assert refused.status_code == 200
    page = refused.content.decode()
    assert "changed by someone else" in page
    assert "Reload it" in page
    assert workflow.description == "first designer's text"


def test_a_stale_graph_edit_is_refused_too(designer):
    workflow = three_step_workflow()
    stale = page_data(designer.get(change_url(workflow)))
    fresh = page_data(designer.get(change_url(workflow)))
    designer.post(change_url(workflow), {**fresh, "steps-0-name": "Triage (renamed)"})

    refused = designer.post(change_url(workflow), {**stale, "steps-1-name": "Resolve (renamed)"})

    page = refused.content.decode()
    assert "changed by someone else" in page
    assert "Select a valid choice" not in page
    names = set(Step.objects.filter(workflow=workflow).values_list("name", flat=True))
    assert names == {"Triage (renamed)", "Resolve", "Finalize"}


def test_a_save_racing_past_the_early_check_is_still_refused_by_the_service(designer, monkeypatch):
    workflow = three_step_workflow(description="original")
    stale = page_data(designer.get(change_url(workflow)))
    designer.post(change_url(workflow), {**page_data(designer.get(change_url(workflow))), "description": "first"})
    monkeypatch.setattr(WorkflowAdmin, "_stale_edit", lambda self, request, object_id: None)

    refused = designer.post(change_url(workflow), {**stale, "description": "second", "steps-0-name": "Lost"})

    workflow.refresh_from_db()
    assert refused.status_code == 200
    assert "changed by someone else" in refused.content.decode()
    assert workflow.description == "first"
    assert not Step.objects.filter(workflow=workflow, name="Lost").exists()


# --- publish, pause, retire -------------------------------------------------------------------


def test_the_publish_button_publishes_version_1_then_reports_an_unchanged_definition(designer):
    workflow = three_step_workflow()
    publish = reverse("admin:workflow_workflow_publish", args=[workflow.pk])

    first = designer.post(publish, follow=True)
    again = designer.post(publish, follow=True)

    workflow.refresh_from_db()
    assert workflow.status == WorkflowStatus.PUBLISHED
    assert workflow.current_version is not None
    assert workflow.current_version.number == 1
    assert any(message.startswith("Published version 1") for message in messages_of(first))
    assert any("Definition unchanged: version 1 is still current" in message for message in messages_of(again))
    assert WorkflowVersion.objects.filter(workflow=workflow).count() == 1
    assert "version 1" in again.content.decode()


def test_publishing_an_invalid_draft_lists_every_problem_and_creates_no_version(designer):
    workflow = WorkflowFactory.create()
    StepFactory.create(workflow=workflow, role=None)

    response = designer.post(reverse("admin:workflow_workflow_publish", args=[workflow.pk]), follow=True)

    [message] = messages_of(response)
    for code in ("no_start_step", "no_end_step", "missing_role"):
        assert f"<code>{code}</code>" in message
    assert not WorkflowVersion.objects.filter(workflow=workflow).exists()


def test_pause_and_retire_buttons_change_the_status_through_the_services(designer):
    workflow = three_step_workflow()
    designer.post(reverse("admin:workflow_workflow_publish", args=[workflow.pk]))

    designer.post(reverse("admin:workflow_workflow_pause", args=[workflow.pk]))
    workflow.refresh_from_db()
    paused = workflow.status
    designer.post(reverse("admin:workflow_workflow_retire", args=[workflow.pk]))
    workflow.refresh_from_db()

    assert paused == WorkflowStatus.PAUSED
    assert workflow.status == WorkflowStatus.RETIRED
    assert actions_of(workflow)[-2:] == [AuditAction.WORKFLOW_PAUSED, AuditAction.WORKFLOW_RETIRED]


def test_pausing_a_never_published_workflow_is_refused_with_a_message(designer):
    workflow = three_step_workflow()

    response = designer.post(reverse("admin:workflow_workflow_pause", args=[workflow.pk]), follow=True)

    assert any("never been published" in message for message in messages_of(response))
    workflow.refresh_from_db()
    assert workflow.status == WorkflowStatus.DRAFT


def test_the_lifecycle_urls_accept_only_post(designer):
    workflow = three_step_workflow()

    response = designer.get(reverse("admin:workflow_workflow_publish", args=[workflow.pk]))

    assert response.status_code == 405
    assert not WorkflowVersion.objects.exists()


def test_the_changelist_actions_publish_pause_and_retire_the_selected_workflows(designer):
    chosen = [three_step_workflow(), three_step_workflow()]
    untouched = three_step_workflow()
    changelist = reverse("admin:workflow_workflow_changelist")
    selected = [str(workflow.pk) for workflow in chosen]

    statuses = []
    for action in ("publish_selected", "pause_selected", "retire_selected"):
        designer.post(changelist, {"action": action, "_selected_action": selected})
        statuses.append({Workflow.objects.get(pk=workflow.pk).status for workflow in chosen})

    assert statuses == [{WorkflowStatus.PUBLISHED}, {WorkflowStatus.PAUSED}, {WorkflowStatus.RETIRED}]
    untouched.refresh_from_db()
    assert untouched.status == WorkflowStatus.DRAFT


def test_the_publish_action_reports_each_workflow(designer):
    good = three_step_workflow(name="Good")
    bad = WorkflowFactory.create(name="Bad")
    changelist = reverse("admin:workflow_workflow_changelist")

    response = designer.post(
        changelist, {"action": "publish_selected", "_selected_action": [good.pk, bad.pk]}, follow=True
    )

    shown = messages_of(response)
    assert any("Bad" in message and "no_steps" in message for message in shown)
    assert "Published version 1 of “Good”." in shown


# --- versions ------------------------------------------------------------------------------


def publish(workflow: Workflow, actor) -> WorkflowVersion:
    return workflow_publish(workflow=Workflow.objects.get(pk=workflow.pk), actor=actor).version


def test_the_version_page_is_read_only_and_draws_that_versions_graph(designer, actor):
    workflow = three_step_workflow()
    version = publish(workflow, actor)
    Step.objects.filter(workflow=workflow, key="resolve").update(name="Renamed after publishing")
    url = reverse("admin:workflow_workflowversion_change", args=[version.pk])

    response = designer.get(url)

    page = response.content.decode()
    assert response.status_code == 200
    assert 'class="workflow-graph"' in page
    assert "Resolve" in page
    assert "Renamed after publishing" not in page
    assert 'name="_save"' not in page
    assert designer.post(url, {"number": 9}).status_code == 403
    assert designer.get(reverse("admin:workflow_workflowversion_add")).status_code == 403
    assert designer.get(reverse("admin:workflow_workflowversion_delete", args=[version.pk])).status_code == 403


def test_the_version_history_lists_a_workflows_versions(designer, actor):
    workflow = three_step_workflow(name="Listed")
    publish(workflow, actor)
    three_step_workflow(name="Other")

    response = designer.get(reverse("admin:workflow_workflowversion_changelist"), {"workflow__id__exact": workflow.pk})

    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == list(WorkflowVersion.objects.filter(workflow=workflow))


def test_the_diff_view_shows_steps_and_transitions_added_removed_and_changed(designer, actor, roles):
    workflow = three_step_workflow()
    publish(workflow, actor)
    steps = {step.key: step for step in Step.objects.filter(workflow=workflow)}
    workflow_graph_replace(
        workflow=workflow,
        actor=actor,
        graph=Graph(
            nodes=[
                GraphNode(
                    id=str(steps["triage"].pk),
                    name="Triage",
                    role_id=None,
                    role_pk=steps["triage"].role_id,
                    is_start=True,
                ),
                GraphNode(
                    id=str(steps["resolve"].pk), name="Resolve", role_id=None, role_pk=roles["Budget Manager"].pk
                ),
                GraphNode(id="review", name="Review", role_id=None, role_pk=roles["Admin"].pk, is_end=True),
            ],
            edges=[
                GraphEdge(id="a", from_id=str(steps["triage"].pk), to_id=str(steps["resolve"].pk), name="Submit"),
                GraphEdge(id="b", from_id=str(steps["resolve"].pk), to_id="review", name="Approve"),
            ],
        ),
    )
    publish(workflow, actor)
    diff_url = reverse("admin:workflow_workflow_diff", args=[workflow.pk])

    response = designer.get(diff_url, {"a": 1, "b": 2})

    page = response.content.decode()
    assert response.status_code == 200
    assert "From version 1 to version 2" in page
    assert "Added: Review (review)" in page
    assert "Removed: Finalize (finalize)" in page
    assert "Changed: Resolve (resolve)" in page
    assert "<td>Asset Manager</td><td>Budget Manager</td>" in page
    assert "Added: resolve —Approve→ review" in page
    assert "Removed: resolve —Reject→ triage" in page
    assert page.count('class="workflow-graph"') == 2
    assert designer.get(diff_url).context["comparison"]["new"].number == 2  # the latest two by default
    assert diff_url in designer.get(change_url(workflow)).content.decode()


def test_migrating_running_tasks_shows_a_dry_run_plan_then_applies_it(designer, actor):
    workflow = three_step_workflow()
    v1 = publish(workflow, actor)
    steps = {step.key: step for step in Step.objects.filter(workflow=workflow)}
    on_resolve = TaskFactory.create(workflow=workflow, workflow_version=v1, current_step_key="resolve")
    on_triage = TaskFactory.create(workflow=workflow, workflow_version=v1, current_step_key="triage")
    # Version 2 drops the triage step: a task there cannot move.
    workflow_graph_replace(
        workflow=workflow,
        actor=actor,
        graph=Graph(
            nodes=[
                GraphNode(
                    id=str(steps["resolve"].pk),
                    name="Resolve",
                    role_id=None,
                    role_pk=steps["resolve"].role_id,
                    is_start=True,
                ),
                GraphNode(
                    id=str(steps["finalize"].pk),
                    name="Finalize",
                    role_id=None,
                    role_pk=steps["finalize"].role_id,
                    is_end=True,
                ),
            ],
            edges=[
                GraphEdge(id="a", from_id=str(steps["resolve"].pk), to_id=str(steps["finalize"].pk), name="Approve")
            ],
        ),
    )
    v2 = publish(workflow, actor)
    url = reverse("admin:workflow_workflowversion_migrate", args=[v2.pk])

    plan = designer.get(url)

    assert plan.status_code == 200
    assert [move.task_id for move in plan.context["plan"].moves] == [on_resolve.pk]
    assert [blocker.task_id for blocker in plan.context["plan"].blockers] == [on_triage.pk]
    assert "does not exist in version 2" in plan.content.decode()
    assert Task.objects.get(pk=on_resolve.pk).workflow_version == v1

    applied = designer.post(url, follow=True)

    assert Task.objects.get(pk=on_resolve.pk).workflow_version == v2
    assert Task.objects.get(pk=on_triage.pk).workflow_version == v1
    assert "Moved 1 task(s) to version 2." in messages_of(applied)
    assert AuditEvent.objects.filter(action=AuditAction.TASK_MIGRATED, target_id=str(on_resolve.pk)).count() == 1


def test_the_migrate_action_opens_the_plan_for_exactly_one_version(designer, actor):
    workflow = three_step_workflow()
    version = publish(workflow, actor)
    changelist = reverse("admin:workflow_workflowversion_changelist")

    response = designer.post(changelist, {"action": "plan_migration", "_selected_action": [version.pk]})

    assert response.status_code == 302
    assert response["Location"] == reverse("admin:workflow_workflowversion_migrate", args=[version.pk])
