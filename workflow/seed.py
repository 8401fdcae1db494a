"""The standard workflows a tenant starts with (`manage.py seed_workflows2`, the `workflow.seed_workflows` message).

`seed_standard_workflows` creates, per tenant, what issue #3 lists and nothing
else: the four roles the workflows need (only if missing), the SLAs, and seven
published workflows. It is idempotent and conservative:

- Roles are reused by name, ignoring letter case, synced ones first. A role
  it has to create has no auth-service id (`role_id` NULL), so the first
  `role_data` sync of that name adopts it instead of making a twin
  (role.services).
- A workflow whose name is taken (ignoring case) is left alone, whatever its
  state. A workflow that cannot be published (another published workflow of
  the tenant already matches its department/category/sub-category) is not
  created at all, and reported.
- Every workflow goes through `workflow_create`, `workflow_graph_replace` and
  `workflow_publish`, so it is validated and audited like a designer's.
- A second run finds everything in place and writes nothing: no version, no
  audit row.

Field Installation's roles: the Ticket Coordinator schedules the visit, the
Asset Manager (who owns the installed equipment) installs and verifies, an
Admin closes. Fibre Fault Repair: the Ticket Coordinator triages and hands
over to maintenance, the Asset Manager repairs in the field, an Admin does the
QA check (and can send the repair back).

`demo=True` also gives every role that has no active member a few made-up
members, through `role_member_sync` like the auth service's messages, so that
`make run` can assign work. Their ids come from reserved ranges
(user_system_role_id 990001+, user ids 101+). A seeded role needs an
auth-service id for a membership message, so demo mode gives it one from the
reserved range 990901+; such a role is then no longer adopted by a later sync
of its name: demo mode is for development databases only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import transaction

from audit.services import Actor
from role.models import Role, RoleMember
from role.services import SyncOutcome, role_ensure_seeded, role_member_sync
from workflow.models import Workflow
from workflow.services import (
    Graph,
    GraphEdge,
    GraphNode,
    WorkflowInvalid,
    workflow_create,
    workflow_graph_replace,
    workflow_publish,
)
from workflow_api.core.models import Tenant

ADMIN = "Admin"
ASSET_MANAGER = "Asset Manager"
BUDGET_MANAGER = "Budget Manager"
TICKET_COORDINATOR = "Ticket Coordinator"

STANDARD_ROLES = {
    ADMIN: "Administers workflows, tasks and users of the engine",
    ASSET_MANAGER: "Handles asset requests and field equipment",
    BUDGET_MANAGER: "Approves budget and purchase requests",
    TICKET_COORDINATOR: "Triages incoming tickets and routes them to the right team",
}

STANDARD_SLA = {
    "sla_urgent": timedelta(hours=4),
    "sla_high": timedelta(hours=8),
    "sla_medium": timedelta(days=2),
    "sla_low": timedelta(days=5),
}

# Canvas layout: steps left to right on one row, so the designer's SVG reads like the flow.
_X0, _DX, _Y = 80, 240, 120

# Reserved for demo data (see the module docstring).
DEMO_USER_SYSTEM_ROLE_ID_BASE = 990_000
DEMO_ROLE_ID_BASE = 990_900
DEMO_MEMBERS = (
    (ADMIN, 101, "Demo Admin"),
    (ASSET_MANAGER, 102, "Demo Asset Manager One"),
    (ASSET_MANAGER, 103, "Demo Asset Manager Two"),
    (BUDGET_MANAGER, 104, "Demo Budget Manager"),
    (TICKET_COORDINATOR, 105, "Demo Ticket Coordinator One"),
    (TICKET_COORDINATOR, 106, "Demo Ticket Coordinator Two"),
)


@dataclass(frozen=True)
class StepSpec:
    key: str
    name: str
    role: str
    instruction: str
    is_start: bool = False
    is_end: bool = False


@dataclass(frozen=True)
class WorkflowSpec:
    name: str
    description: str
    department: str
    category: str
    sub_category: str
    steps: tuple[StepSpec, ...]
    transitions: tuple[tuple[str, str, str], ...]  # (from key, to key, name)

    def graph(self, role_pks: dict[str, int]) -> Graph:
        return Graph(
            nodes=[
                GraphNode(
                    id=step.key,
                    key=step.key,
                    name=step.name,
                    role_id=None,
                    role_pk=role_pks[step.role],
                    instruction=step.instruction,
                    is_start=step.is_start,
                    is_end=step.is_end,
                    x=_X0 + index * _DX,
                    y=_Y,
                )
                for index, step in enumerate(self.steps)
            ],
            edges=[
                GraphEdge(id=f"e{index}", from_id=source, to_id=target, name=name)
                for index, (source, target, name) in enumerate(self.transitions)
            ],
        )

    def roles(self) -> list[str]:
        return list(dict.fromkeys(step.role for step in self.steps))


def _triage_resolve_finalize(
    name: str, department: str, category: str, sub_category: str, resolver: str, description: str
) -> WorkflowSpec:
    return WorkflowSpec(
        name=name,
        description=description,
        department=department,
        category=category,
        sub_category=sub_category,
        steps=(
            StepSpec("triage-ticket", "Triage Ticket", ADMIN, "Check the request is complete.", is_start=True),
            StepSpec("resolve-ticket", "Resolve Ticket", resolver, "Approve the request, or send it back."),
            StepSpec("finalize-ticket", "Finalize Ticket", ADMIN, "Record the outcome and close.", is_end=True),
        ),
        transitions=(
            ("triage-ticket", "resolve-ticket", "Submit"),
            ("resolve-ticket", "finalize-ticket", "Approve"),
            ("resolve-ticket", "triage-ticket", "Reject"),
        ),
    )


def _single_step(name: str, department: str, category: str, sub_category: str, description: str) -> WorkflowSpec:
    return WorkflowSpec(
        name=name,
        description=description,
        department=department,
        category=category,
        sub_category=sub_category,
        steps=(
            StepSpec(
                "resolve-ticket", "Resolve Ticket", ASSET_MANAGER, "Do what is asked.", is_start=True, is_end=True
            ),
        ),
        transitions=(),
    )


STANDARD_WORKFLOWS: tuple[WorkflowSpec, ...] = (
    _triage_resolve_finalize(
        "Asset Check In",
        "Asset Department",
        "Asset Check In",
        "Check In",
        ASSET_MANAGER,
        "An asset comes back: checked, then recorded as returned.",
    ),
    _triage_resolve_finalize(
        "Asset Check Out",
        "Asset Department",
        "Asset Check Out",
        "Check Out",
        ASSET_MANAGER,
        "An asset is handed out: approved, then recorded as issued.",
    ),
    _triage_resolve_finalize(
        "New Budget Proposal",
        "Budget Department",
        "New Budget Proposal",
        "Budget Approval",
        BUDGET_MANAGER,
        "A budget proposal: triaged, approved or sent back, finalized.",
    ),
    _single_step(
        "IT Support Access Request",
        "IT Department",
        "IT Support",
        "Access Request",
        "Grant the access a user asks for.",
    ),
    _single_step(
        "IT Support Software Installation",
        "IT Department",
        "Others",
        "Software Installation",
        "Install the software a user asks for.",
    ),
    WorkflowSpec(
        name="Field Installation",
        description="A service installed at the customer's site, from the visit to closing the ticket.",
        department="Field Operations",
        category="Installation",
        sub_category="",
        steps=(
            StepSpec(
                "schedule-visit",
                "Schedule visit",
                TICKET_COORDINATOR,
                "Agree a visit slot with the customer.",
                is_start=True,
            ),
            StepSpec("install-on-site", "Install on site", ASSET_MANAGER, "Install and connect the equipment."),
            StepSpec("verify-service", "Verify service", ASSET_MANAGER, "Check the service works end to end."),
            StepSpec("close", "Close", ADMIN, "Confirm with the customer and close.", is_end=True),
        ),
        transitions=(
            ("schedule-visit", "install-on-site", "Scheduled"),
            ("install-on-site", "verify-service", "Installed"),
            ("verify-service", "close", "Verified"),
        ),
    ),
    WorkflowSpec(
        name="Fibre Fault Repair",
        description="A fibre fault: triaged, repaired in the field, checked, handed over to maintenance.",
        department="Network Operations",
        category="Fault",
        sub_category="",
        steps=(
            StepSpec("triage", "Triage", TICKET_COORDINATOR, "Locate the fault and dispatch a crew.", is_start=True),
            StepSpec("field-repair", "Field repair", ASSET_MANAGER, "Repair the fibre on site."),
            StepSpec("qa-verification", "QA verification", ADMIN, "Check the repair; reject it if it is not right."),
            StepSpec(
                "handover-to-maintenance",
                "Handover to maintenance",
                TICKET_COORDINATOR,
                "Hand the repaired line over to maintenance.",
                is_end=True,
            ),
        ),
        transitions=(
            ("triage", "field-repair", "Dispatch"),
            ("field-repair", "qa-verification", "Repaired"),
            ("qa-verification", "field-repair", "Reject"),
            ("qa-verification", "handover-to-maintenance", "Approve"),
        ),
    ),
)


@dataclass
class SeedReport:
    dry_run: bool
    roles_created: list[str] = field(default_factory=list)
    roles_reused: list[str] = field(default_factory=list)
    workflows_created: list[str] = field(default_factory=list)
    workflows_existing: list[str] = field(default_factory=list)
    workflows_skipped: dict[str, str] = field(default_factory=dict)
    demo_members_added: int = 0

    def summary(self) -> str:
        verb = "would be " if self.dry_run else ""
        return (
            f"Summary: workflows {len(self.workflows_created)} {verb}created, "
            f"{len(self.workflows_existing)} already there, {len(self.workflows_skipped)} skipped; "
            f"roles {len(self.roles_created)} {verb}created, {len(self.roles_reused)} reused; "
            f"demo members {self.demo_members_added} {verb}added."
            + (" Dry run: nothing was written." if self.dry_run else "")
        )


class _DryRun(Exception):
    """Raised at the end of a dry run to roll everything back."""


def _silent(_line: str) -> None:
    return None


class _Roles:
    """The tenant's roles by name, created (seeded, no auth id) the first time one is missing."""

    def __init__(self, *, tenant: Tenant, actor: Actor, report: SeedReport, out: Callable[[str], None]) -> None:
        self.tenant, self.actor, self.report, self.out = tenant, actor, report, out
        self.by_name: dict[str, Role] = {}

    def get(self, name: str) -> Role:
        if name in self.by_name:
            return self.by_name[name]
        role, created = role_ensure_seeded(
            tenant=self.tenant, name=name, description=STANDARD_ROLES[name], actor=self.actor
        )
        if not created:
            self.report.roles_reused.append(name)
            self.out(f"  role {name}: exists ({'role_id ' + str(role.role_id) if role.role_id else 'seeded'})")
        else:
            self.report.roles_created.append(name)
            self.out(f"  role {name}: {'would be ' if self.report.dry_run else ''}created (no role_id until synced)")
        self.by_name[name] = role
        return role


def _seed_workflow(spec: WorkflowSpec, *, tenant: Tenant, actor: Actor, roles: _Roles, report: SeedReport) -> str:
    existing = Workflow.objects.filter(tenant=tenant, name__iexact=spec.name, deleted_at__isnull=True).first()
    if existing is not None:
        report.workflows_existing.append(spec.name)
        return f"exists ({existing.status}), left alone"
    role_pks = {name: roles.get(name).pk for name in spec.roles()}
    try:
        # A savepoint: a workflow that cannot be published is not left behind as a draft.
        with transaction.atomic():
            workflow = workflow_create(
                tenant=tenant,
                actor=actor,
                name=spec.name,
                description=spec.description,
                department=spec.department,
                category=spec.category,
                sub_category=spec.sub_category,
                **STANDARD_SLA,
            )
            workflow_graph_replace(workflow=workflow, graph=spec.graph(role_pks), actor=actor)
            result = workflow_publish(workflow=workflow, actor=actor)
    except WorkflowInvalid as exc:
        reason = "; ".join(problem.message for problem in exc.problems)
        report.workflows_skipped[spec.name] = reason
        return f"skipped: {reason}"
    report.workflows_created.append(spec.name)
    verb = "would be created" if report.dry_run else "created"
    return f"{verb} and published (version {result.version.number})"


def _seed_demo_members(*, tenant: Tenant, roles: _Roles, report: SeedReport, out: Callable[[str], None]) -> None:
    """Demo members for each standard role nobody (but earlier demo members) actively holds."""
    demo_ids = {DEMO_USER_SYSTEM_ROLE_ID_BASE + index for index in range(1, len(DEMO_MEMBERS) + 1)}
    for number, role_name in enumerate(STANDARD_ROLES, start=1):
        role = roles.get(role_name)
        others = RoleMember.objects.filter(role=role, is_active=True, deleted_at__isnull=True).exclude(
            user_system_role_id__in=demo_ids
        )
        if others.exists():
            out(f"  demo members of {role.name}: not needed, it has active members")
            continue
        role_id = role.role_id or DEMO_ROLE_ID_BASE + number
        for index, (member_role, user_id, full_name) in enumerate(DEMO_MEMBERS, start=1):
            if member_role != role_name:
                continue
            outcome = role_member_sync(
                payload={
                    "tenant": tenant.slug,
                    "user_system_role_id": DEMO_USER_SYSTEM_ROLE_ID_BASE + index,
                    "user_id": user_id,
                    "user_email": f"{full_name.lower().replace(' ', '.')}@example.com",
                    "user_full_name": full_name,
                    "system": "tts",
                    "role_id": role_id,
                    "role_name": role.name,
                    "is_active": True,
                    "action": "create",
                },
                message_id="seed_workflows",
            )
            if outcome == SyncOutcome.APPLIED:
                report.demo_members_added += 1
            state = "already there" if outcome == SyncOutcome.DUPLICATE else str(outcome)
            out(f"  demo member {full_name} in {role.name}: {state}")


def seed_standard_workflows(
    *,
    tenant: Tenant,
    actor: Actor,
    demo: bool = False,
    dry_run: bool = False,
    out: Callable[[str], None] = _silent,
) -> SeedReport:
    """Create the tenant's standard roles, workflows (published) and, with `demo`, demo members.

    Idempotent: what exists is reused or left alone, so a second run writes
    nothing. One transaction, holding the tenant row (FOR NO KEY UPDATE) so
    that two seeds of one tenant run one after the other. A dry run does all
    of it, so that validation really runs, then rolls the transaction back.
    `out` receives one progress line at a time, then the summary.
    """
    report = SeedReport(dry_run=dry_run)
    out(f"Standard workflows for tenant {tenant.slug!r}" + (" (dry run: nothing will be written)" if dry_run else ""))
    try:
        with transaction.atomic():
            Tenant.objects.select_for_update(no_key=True).filter(pk=tenant.pk).first()
            roles = _Roles(tenant=tenant, actor=actor, report=report, out=out)
            for spec in STANDARD_WORKFLOWS:
                outcome = _seed_workflow(spec, tenant=tenant, actor=actor, roles=roles, report=report)
                out(f"  workflow {spec.name}: {outcome}")
            if demo:
                _seed_demo_members(tenant=tenant, roles=roles, report=report, out=out)
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass
    out(report.summary())
    return report
