"""The standard workflows: what seeding creates, what it reuses, and that a second run changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command

from audit.models import AuditAction, AuditEvent
from audit.services import Actor
from role.models import Role, RoleMember
from role.selectors import role_names_for_user
from role.services import SyncOutcome, role_member_sync, role_sync
from role.tests.factories import RoleFactory, RoleMemberFactory, role_data, user_role_data
from step.models import Step
from workflow.models import Workflow, WorkflowStatus, WorkflowVersion
from workflow.seed import seed_standard_workflows
from workflow.selectors import workflow_match
from workflow.services import workflow_problems, workflow_publish
from workflow.tests.factories import WorkflowFactory, three_step_workflow

pytestmark = pytest.mark.django_db

ADMIN, ASSET, BUDGET, COORDINATOR = "Admin", "Asset Manager", "Budget Manager", "Ticket Coordinator"
TRIAGE_RESOLVE_FINALIZE = {
    ("Triage Ticket", "Resolve Ticket", "Submit"),
    ("Resolve Ticket", "Finalize Ticket", "Approve"),
}
TRIAGE_RESOLVE_FINALIZE |= {("Resolve Ticket", "Triage Ticket", "Reject")}

# name: ((department, category, sub_category), [(step, owning role, start, end)], {(from, to, transition)})
EXPECTED = {
    "Asset Check In": (
        ("Asset Department", "Asset Check In", "Check In"),
        [
            ("Triage Ticket", ADMIN, True, False),
            ("Resolve Ticket", ASSET, False, False),
            ("Finalize Ticket", ADMIN, False, True),
        ],
        TRIAGE_RESOLVE_FINALIZE,
    ),
    "Asset Check Out": (
        ("Asset Department", "Asset Check Out", "Check Out"),
        [
            ("Triage Ticket", ADMIN, True, False),
            ("Resolve Ticket", ASSET, False, False),
            ("Finalize Ticket", ADMIN, False, True),
        ],
        TRIAGE_RESOLVE_FINALIZE,
    ),
    "New Budget Proposal": (
        ("Budget Department", "New Budget Proposal", "Budget Approval"),
        [
            ("Triage Ticket", ADMIN, True, False),
            ("Resolve Ticket", BUDGET, False, False),
            ("Finalize Ticket", ADMIN, False, True),
        ],
        TRIAGE_RESOLVE_FINALIZE,
    ),
    "IT Support Access Request": (
        ("IT Department", "IT Support", "Access Request"),
        [("Resolve Ticket", ASSET, True, True)],
        set(),
    ),
    "IT Support Software Installation": (
        ("IT Department", "Others", "Software Installation"),
        [("Resolve Ticket", ASSET, True, True)],
        set(),
    ),
    "Field Installation": (
        ("Field Operations", "Installation", ""),
        [
            ("Schedule visit", COORDINATOR, True, False),
            ("Install on site", ASSET, False, False),
            ("Verify service", ASSET, False, False),
            ("Close", ADMIN, False, True),
        ],
        {
            ("Schedule visit", "Install on site", "Scheduled"),
            ("Install on site", "Verify service", "Installed"),
            ("Verify service", "Close", "Verified"),
        },
    ),
    "Fibre Fault Repair": (
        ("Network Operations", "Fault", ""),
        [
            ("Triage", COORDINATOR, True, False),
            ("Field repair", ASSET, False, False),
            ("QA verification", ADMIN, False, False),
            ("Handover to maintenance", COORDINATOR, False, True),
        ],
        {
            ("Triage", "Field repair", "Dispatch"),
            ("Field repair", "QA verification", "Repaired"),
            ("QA verification", "Field repair", "Reject"),
            ("QA verification", "Handover to maintenance", "Approve"),
        },
    ),
}


def _seed(tenant, **options):
    lines: list[str] = []
    report = seed_standard_workflows(tenant=tenant, actor=Actor.system(), out=lines.append, **options)
    return report, lines


def _version(workflow: Workflow) -> WorkflowVersion:
    assert workflow.current_version is not None
    return workflow.current_version


def _counts() -> tuple[int, ...]:
    return tuple(model.objects.count() for model in (Role, RoleMember, Workflow, Step, WorkflowVersion, AuditEvent))


def test_seeding_an_empty_tenant_creates_the_four_roles_and_seven_published_workflows(tenant):
    report, lines = _seed(tenant)

    assert sorted(report.workflows_created) == sorted(EXPECTED)
    assert sorted(Role.objects.filter(tenant=tenant).values_list("name", flat=True)) == [
        ADMIN,
        ASSET,
        BUDGET,
        COORDINATOR,
    ]
    assert not Role.objects.filter(role_id__isnull=False).exists()
    workflows = Workflow.objects.filter(tenant=tenant)
    assert sorted(workflows.values_list("name", flat=True)) == sorted(EXPECTED)
    for workflow in workflows:
        assert workflow.status == WorkflowStatus.PUBLISHED
        assert _version(workflow).number == 1
    assert lines[-1].startswith("Summary: workflows 7 created, 0 already there, 0 skipped; roles 4 created")


@pytest.mark.parametrize("name", list(EXPECTED))
def test_each_standard_workflow_has_its_keys_steps_roles_and_transitions(tenant, name):
    _seed(tenant)
    keys, steps, transitions = EXPECTED[name]
    workflow = Workflow.objects.get(tenant=tenant, name=name)
    definition = _version(workflow).definition

    assert (workflow.department, workflow.category, workflow.sub_category) == keys
    stored = Step.objects.filter(workflow=workflow).select_related("role").order_by("x")
    assert [(s.name, s.role and s.role.name, s.is_start, s.is_end) for s in stored] == steps
    assert sorted(s.x for s in stored) == [s.x for s in stored]
    assert len({s.x for s in stored}) == len(steps)
    name_of = {step["key"]: step["name"] for step in definition["steps"]}
    assert {(name_of[t["from"]], name_of[t["to"]], t["name"]) for t in definition["transitions"]} == transitions
    assert {step["role"]["name"] for step in definition["steps"]} == {role for _, role, _, _ in steps}


def test_every_standard_workflow_has_the_standard_slas(tenant):
    _seed(tenant)

    for workflow in Workflow.objects.filter(tenant=tenant):
        assert workflow.sla() == {
            "urgent": timedelta(hours=4),
            "high": timedelta(hours=8),
            "medium": timedelta(days=2),
            "low": timedelta(days=5),
        }
        assert _version(workflow).definition["sla"] == {
            "urgent": 14400,
            "high": 28800,
            "medium": 172800,
            "low": 432000,
        }


def test_every_standard_workflow_validates_and_is_matched_by_its_own_keys(tenant):
    _seed(tenant)

    for workflow in Workflow.objects.filter(tenant=tenant):
        assert workflow_problems(workflow) == []
        matched = workflow_match(
            tenant=tenant,
            department=workflow.department.upper(),
            category=f" {workflow.category} ",
            sub_category=workflow.sub_category,
        )
        assert matched == workflow


def test_seeding_goes_through_the_services_and_is_audited(tenant):
    _seed(tenant)

    for action in (AuditAction.WORKFLOW_CREATED, AuditAction.WORKFLOW_GRAPH_REPLACED, AuditAction.WORKFLOW_PUBLISHED):
        assert AuditEvent.objects.filter(action=action, actor_name="system").count() == 7
    assert AuditEvent.objects.filter(action=AuditAction.ROLE_CREATED, target_type="role").count() == 4


def test_seeding_twice_changes_nothing_the_second_time(tenant):
    _seed(tenant)
    before = _counts()

    report, lines = _seed(tenant)

    assert _counts() == before
    assert report.workflows_created == []
    assert sorted(report.workflows_existing) == sorted(EXPECTED)
    assert "Summary: workflows 0 created, 7 already there, 0 skipped; roles 0 created" in lines[-1]


def test_existing_roles_are_reused_by_name_ignoring_letter_case_synced_ones_first(tenant):
    synced = RoleFactory.create(tenant=tenant, name="asset manager", role_id=55)
    RoleFactory.create(tenant=tenant, name="Asset Manager", role_id=None)
    RoleFactory.create(tenant=tenant, name="Admin", role_id=56, deleted_at=datetime(2026, 1, 1, tzinfo=UTC))

    report, _ = _seed(tenant)

    assert sorted(report.roles_created) == [ADMIN, BUDGET, COORDINATOR]
    assert report.roles_reused == [ASSET]
    assert set(Step.objects.filter(role__name__iexact=ASSET).values_list("role", flat=True)) == {synced.pk}
    admin_owners = set(Step.objects.filter(role__name=ADMIN).values_list("role__role_id", "role__deleted_at"))
    assert admin_owners == {(None, None)}


def test_an_existing_workflow_with_a_standard_name_is_left_alone(tenant):
    mine = WorkflowFactory.create(tenant=tenant, name="asset check in", department="Somewhere", category="Else")

    report, lines = _seed(tenant)

    assert "Asset Check In" in report.workflows_existing
    assert "  workflow Asset Check In: exists (draft), left alone" in lines
    stored = Workflow.objects.get(pk=mine.pk)
    assert (stored.name, stored.department, stored.status, stored.edit_version) == (
        "asset check in",
        "Somewhere",
        WorkflowStatus.DRAFT,
        mine.edit_version,
    )
    assert not Step.objects.filter(workflow=mine).exists()
    assert Workflow.objects.filter(tenant=tenant).count() == 7


def test_a_standard_workflow_whose_keys_another_published_workflow_matches_is_skipped_without_a_trace(tenant):
    mine = three_step_workflow(
        tenant=tenant,
        name="Our returns",
        department="Asset Department",
        category="Asset Check In",
        sub_category="Check In",
    )
    workflow_publish(workflow=mine, actor=Actor.system())

    report, lines = _seed(tenant)

    assert "Our returns" in report.workflows_skipped["Asset Check In"]
    assert any(line.startswith("  workflow Asset Check In: skipped: ") for line in lines)
    assert not Workflow.objects.filter(name="Asset Check In").exists()
    assert not AuditEvent.objects.filter(target_display="Asset Check In").exists()
    assert len(report.workflows_created) == 6


def test_seeding_one_tenant_leaves_the_other_alone(tenant, other_tenant):
    _seed(other_tenant)

    assert Workflow.objects.filter(tenant=other_tenant).count() == 7
    assert not Workflow.objects.filter(tenant=tenant).exists()
    assert not Role.objects.filter(tenant=tenant).exists()


def test_a_later_role_sync_with_the_same_name_adopts_the_seeded_role(tenant):
    _seed(tenant)
    seeded = Role.objects.get(tenant=tenant, name=ASSET)

    outcome = role_sync(payload=role_data(role_id=77, name=ASSET))

    assert outcome == SyncOutcome.APPLIED
    adopted = Role.objects.get(tenant=tenant, role_id=77)
    assert adopted.pk == seeded.pk
    assert Role.objects.filter(tenant=tenant, name=ASSET).count() == 1
    resolve = Step.objects.get(workflow__name="Asset Check In", key="resolve-ticket")
    assert resolve.role_id == seeded.pk


def test_a_later_membership_sync_naming_a_seeded_role_adopts_it_too(tenant):
    _seed(tenant)
    seeded = Role.objects.get(tenant=tenant, name=BUDGET)

    role_member_sync(payload=user_role_data(role_id=88, role_name=BUDGET, user_id=5))

    assert Role.objects.filter(tenant=tenant, name=BUDGET).count() == 1
    assert Role.objects.get(pk=seeded.pk).role_id == 88
    assert BUDGET in role_names_for_user(tenant=tenant, user_id=5)


def test_a_dry_run_reports_what_it_would_do_and_writes_nothing(tenant):
    before = _counts()

    report, lines = _seed(tenant, dry_run=True, demo=True)

    assert _counts() == before
    assert len(report.workflows_created) == 7
    assert "(dry run: nothing will be written)" in lines[0]
    assert "  workflow Field Installation: would be created and published (version 1)" in lines
    assert lines[-1].endswith("Dry run: nothing was written.")
    assert "workflows 7 would be created" in lines[-1]


def test_demo_mode_gives_every_standard_role_members_through_the_membership_sync(tenant):
    report, _ = _seed(tenant, demo=True)

    members = RoleMember.objects.filter(tenant=tenant).select_related("role")
    assert report.demo_members_added == members.count() == 6
    assert {m.role.name for m in members} == {ADMIN, ASSET, BUDGET, COORDINATOR}
    assert all(m.user_id >= 101 and m.user_system_role_id > 990_000 for m in members)
    assert AuditEvent.objects.filter(action=AuditAction.ROLE_MEMBER_ADDED).count() == 6
    assert ASSET in role_names_for_user(tenant=tenant, user_id=102)


def test_demo_mode_twice_adds_nobody_the_second_time(tenant):
    _seed(tenant, demo=True)
    before = _counts()

    report, _ = _seed(tenant, demo=True)

    assert _counts() == before
    assert report.demo_members_added == 0


def test_demo_mode_leaves_roles_that_already_have_active_members_alone(tenant):
    admin = RoleFactory.create(tenant=tenant, name=ADMIN, role_id=1)
    RoleMemberFactory.create(role=admin, user_id=500)

    report, lines = _seed(tenant, demo=True)

    assert list(RoleMember.objects.filter(role=admin).values_list("user_id", flat=True)) == [500]
    assert "  demo members of Admin: not needed, it has active members" in lines
    assert report.demo_members_added == 5


def test_seed_demo_then_seeding_twice_is_stable_and_reuses_the_demo_roles(tenant):
    call_command("seed_demo", stdout=StringIO())
    assert Workflow.objects.filter(tenant=tenant, status=WorkflowStatus.PUBLISHED).count() == 7
    before = _counts()

    for _ in range(2):
        report, _ = _seed(tenant)
        assert report.roles_created == []
        assert report.workflows_created == []
    call_command("seed_demo", stdout=StringIO())

    assert _counts() == before
    assert list(Role.objects.order_by("role_id").values_list("role_id", flat=True)) == [1, 2, 3, 4]
    assert set(Step.objects.values_list("role__role_id", flat=True)) == {1, 2, 3, 4}
