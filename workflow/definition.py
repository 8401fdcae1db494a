"""A workflow's graph as plain data: validation, the frozen definition, its hash.

`Draft` is the graph whatever it came from: the stored draft rows, a graph
PUT by the API, or an imported JSON file. `draft_validate` returns every
problem at once, each with a stable code and the step or transition it
concerns, so the designer sees the whole list, not the first error.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections import deque
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from workflow.models import PRIORITIES


class ProblemCode(StrEnum):
    NO_STEPS = "no_steps"
    NO_START_STEP = "no_start_step"
    MULTIPLE_START_STEPS = "multiple_start_steps"
    NO_END_STEP = "no_end_step"
    UNREACHABLE_STEP = "unreachable_step"
    NO_PATH_TO_END = "no_path_to_end"
    MISSING_ROLE = "missing_role"
    UNKNOWN_ROLE = "unknown_role"
    UNKNOWN_ESCALATION_ROLE = "unknown_escalation_role"
    NEGATIVE_WEIGHT = "negative_weight"
    DUPLICATE_STEP = "duplicate_step"
    DANGLING_TRANSITION = "dangling_transition"
    SELF_LOOP = "self_loop"
    DUPLICATE_TRANSITION = "duplicate_transition"
    END_STEP_HAS_OUTGOING = "end_step_has_outgoing"
    SLA_INCOMPLETE = "sla_incomplete"
    SLA_NOT_ORDERED = "sla_not_ordered"
    MATCH_KEYS_INCOMPLETE = "match_keys_incomplete"
    AMBIGUOUS_MATCH = "ambiguous_match"


# Problems that make a graph impossible to store at all (the API refuses such
# a PUT); the others only block publishing.
STRUCTURAL_CODES = frozenset(
    {
        ProblemCode.UNKNOWN_ROLE,
        ProblemCode.UNKNOWN_ESCALATION_ROLE,
        ProblemCode.NEGATIVE_WEIGHT,
        ProblemCode.DUPLICATE_STEP,
        ProblemCode.DANGLING_TRANSITION,
        ProblemCode.SELF_LOOP,
        ProblemCode.DUPLICATE_TRANSITION,
    }
)


@dataclass(frozen=True)
class Problem:
    code: ProblemCode
    message: str
    step: str | None = None
    transition: str | None = None

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": str(self.code), "message": self.message}
        if self.step is not None:
            body["step"] = self.step
        if self.transition is not None:
            body["transition"] = self.transition
        return body


@dataclass(frozen=True)
class RoleRef:
    """A role as a definition records it: the engine's pk, the auth service's id, the name."""

    pk: int
    role_id: int | None
    name: str

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.pk, "role_id": self.role_id, "name": self.name}


@dataclass
class DraftStep:
    ref: str  # what transitions and problems call it: the stored id, or a client's id in a PUT
    key: str
    name: str
    role: RoleRef | None
    escalation_role: RoleRef | None = None
    weight: Decimal = Decimal("1")
    is_start: bool = False
    is_end: bool = False
    instruction: str = ""
    x: int = 0
    y: int = 0
    assignment_strategy: str = "round_robin"
    assignee_count: int = 1
    # Set when the input named a role that does not exist (kept for the problem message).
    unknown_role: Any = None
    unknown_escalation_role: Any = None


@dataclass
class DraftTransition:
    ref: str
    from_ref: str
    to_ref: str
    name: str


@dataclass
class Draft:
    department: str
    category: str
    sub_category: str
    sla: dict[str, timedelta | None]
    steps: list[DraftStep] = field(default_factory=list)
    transitions: list[DraftTransition] = field(default_factory=list)


def normalise_key(value: str | None) -> str:
    """Matching ignores letter case and surrounding spaces."""
    return (value or "").strip().casefold()


def draft_validate(draft: Draft, *, conflicting_workflow: str | None = None) -> list[Problem]:
    """Every problem of the draft, structural ones first. Empty means publishable."""
    problems: list[Problem] = []
    steps_by_ref: dict[str, DraftStep] = {}
    keys: set[str] = set()
    for step in draft.steps:
        if step.ref in steps_by_ref:
            problems.append(Problem(ProblemCode.DUPLICATE_STEP, f"Two steps use the id {step.ref!r}.", step=step.ref))
        elif step.key in keys:
            # The key identifies a step across versions (and is unique per workflow in the database).
            problems.append(Problem(ProblemCode.DUPLICATE_STEP, f"Two steps use the key {step.key!r}.", step=step.ref))
        steps_by_ref[step.ref] = step
        keys.add(step.key)
        if step.unknown_role is not None:
            problems.append(
                Problem(ProblemCode.UNKNOWN_ROLE, f"Step {step.name!r}: no role {step.unknown_role!r}.", step=step.ref)
            )
        elif step.role is None:
            problems.append(Problem(ProblemCode.MISSING_ROLE, f"Step {step.name!r} has no owning role.", step=step.ref))
        if step.unknown_escalation_role is not None:
            problems.append(
                Problem(
                    ProblemCode.UNKNOWN_ESCALATION_ROLE,
                    f"Step {step.name!r}: no escalation role {step.unknown_escalation_role!r}.",
                    step=step.ref,
                )
            )
        if step.weight < 0:
            problems.append(
                Problem(ProblemCode.NEGATIVE_WEIGHT, f"Step {step.name!r} has a negative weight.", step=step.ref)
            )

    edges: dict[str, set[str]] = {ref: set() for ref in steps_by_ref}
    reverse: dict[str, set[str]] = {ref: set() for ref in steps_by_ref}
    seen_transitions: set[tuple[str, str, str]] = set()
    for transition in draft.transitions:
        label = f"{transition.name!r} ({transition.from_ref} → {transition.to_ref})"
        missing = [end for end in (transition.from_ref, transition.to_ref) if end not in steps_by_ref]
        if missing:
            problems.append(
                Problem(
                    ProblemCode.DANGLING_TRANSITION,
                    f"Transition {label} points at no step: {', '.join(map(repr, missing))}.",
                    transition=transition.ref,
                )
            )
            continue
        if transition.from_ref == transition.to_ref:
            problems.append(
                Problem(
                    ProblemCode.SELF_LOOP, f"Transition {label} leads back to its own step.", transition=transition.ref
                )
            )
            continue
        identity = (transition.from_ref, transition.to_ref, transition.name.strip().casefold())
        if identity in seen_transitions:
            problems.append(
                Problem(
                    ProblemCode.DUPLICATE_TRANSITION, f"Transition {label} is given twice.", transition=transition.ref
                )
            )
        seen_transitions.add(identity)
        edges[transition.from_ref].add(transition.to_ref)
        reverse[transition.to_ref].add(transition.from_ref)
        if steps_by_ref[transition.from_ref].is_end:
            problems.append(
                Problem(
                    ProblemCode.END_STEP_HAS_OUTGOING,
                    f"End step {steps_by_ref[transition.from_ref].name!r} has an outgoing transition {label}.",
                    step=transition.from_ref,
                    transition=transition.ref,
                )
            )

    problems.extend(_graph_shape_problems(draft, steps_by_ref, edges, reverse))
    problems.extend(sla_problems(draft.sla))
    if not normalise_key(draft.department) or not normalise_key(draft.category):
        problems.append(
            Problem(ProblemCode.MATCH_KEYS_INCOMPLETE, "Department and category are needed to match tickets.")
        )
    if conflicting_workflow is not None:
        problems.append(
            Problem(
                ProblemCode.AMBIGUOUS_MATCH,
                f"Published workflow {conflicting_workflow!r} already matches "
                f"({draft.department} / {draft.category} / {draft.sub_category or '—'}).",
            )
        )
    return problems


def _reachable(start: str, edges: dict[str, set[str]]) -> set[str]:
    seen = {start}
    queue = deque([start])
    while queue:
        for nxt in edges[queue.popleft()]:
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return seen


def _graph_shape_problems(
    draft: Draft, steps_by_ref: dict[str, DraftStep], edges: dict[str, set[str]], reverse: dict[str, set[str]]
) -> list[Problem]:
    if not steps_by_ref:
        return [Problem(ProblemCode.NO_STEPS, "The workflow has no steps.")]
    problems: list[Problem] = []
    starts = [step for step in steps_by_ref.values() if step.is_start]
    ends = [step for step in steps_by_ref.values() if step.is_end]
    if not starts:
        problems.append(Problem(ProblemCode.NO_START_STEP, "Exactly one step must be the start step; none is."))
    elif len(starts) > 1:
        for step in starts:
            problems.append(
                Problem(
                    ProblemCode.MULTIPLE_START_STEPS,
                    f"Exactly one step must be the start step; {step.name!r} is one of {len(starts)}.",
                    step=step.ref,
                )
            )
    if not ends:
        problems.append(Problem(ProblemCode.NO_END_STEP, "At least one step must be an end step."))
    if len(starts) == 1:
        reachable = _reachable(starts[0].ref, edges)
        for ref, step in steps_by_ref.items():
            if ref not in reachable:
                problems.append(
                    Problem(
                        ProblemCode.UNREACHABLE_STEP, f"Step {step.name!r} cannot be reached from the start.", step=ref
                    )
                )
    if ends:
        can_finish: set[str] = set()
        for end in ends:
            can_finish |= _reachable(end.ref, reverse)
        for ref, step in steps_by_ref.items():
            if ref not in can_finish:
                problems.append(
                    Problem(ProblemCode.NO_PATH_TO_END, f"No end step can be reached from {step.name!r}.", step=ref)
                )
    return problems


def sla_problems(sla: dict[str, timedelta | None]) -> list[Problem]:
    missing = [priority for priority in PRIORITIES if sla.get(priority) is None or sla[priority] <= timedelta(0)]  # type: ignore[operator]
    if missing:
        return [Problem(ProblemCode.SLA_INCOMPLETE, f"SLA missing or not positive for: {', '.join(missing)}.")]
    ordered = [sla[priority] for priority in PRIORITIES]  # urgent, high, medium, low
    if not all(a < b for a, b in itertools.pairwise(ordered)):  # type: ignore[operator]
        return [Problem(ProblemCode.SLA_NOT_ORDERED, "SLAs must satisfy urgent < high < medium < low.")]
    return []


def definition_of(
    draft: Draft, *, name: str, description: str, completion_action: str, sub_category: str | None = None
) -> dict[str, Any]:
    """The complete, self-contained definition a version freezes (steps by key)."""
    ref_to_key = {step.ref: step.key for step in draft.steps}
    return {
        "workflow": {
            "name": name,
            "description": description,
            "department": draft.department,
            "category": draft.category,
            "sub_category": draft.sub_category if sub_category is None else sub_category,
            "completion_action": completion_action,
        },
        "sla": {priority: int(draft.sla[priority].total_seconds()) for priority in PRIORITIES},  # type: ignore[union-attr]
        "steps": sorted(
            (
                {
                    "key": step.key,
                    "name": step.name,
                    "instruction": step.instruction,
                    "role": step.role.as_dict() if step.role else None,
                    "escalation_role": step.escalation_role.as_dict() if step.escalation_role else None,
                    # Fixed-point text: Decimal("10").normalize() alone would read "1E+1".
                    "weight": f"{step.weight.normalize() if step.weight else Decimal('0'):f}",
                    "is_start": step.is_start,
                    "is_end": step.is_end,
                    "assignment": {"strategy": step.assignment_strategy, "count": step.assignee_count},
                    "x": step.x,
                    "y": step.y,
                }
                for step in draft.steps
            ),
            key=lambda step: step["key"],
        ),
        "transitions": sorted(
            ({"from": ref_to_key[t.from_ref], "to": ref_to_key[t.to_ref], "name": t.name} for t in draft.transitions),
            key=lambda t: (t["from"], t["to"], t["name"]),
        ),
    }


# Canvas positions are drawing, not behaviour: moving a node is not a new version.
_LAYOUT_FIELDS = ("x", "y")


def definition_hash(definition: dict[str, Any]) -> str:
    behaviour = {
        **definition,
        "steps": [{k: v for k, v in step.items() if k not in _LAYOUT_FIELDS} for step in definition["steps"]],
    }
    payload = json.dumps(behaviour, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()
