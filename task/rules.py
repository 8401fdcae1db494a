"""What a task's own workflow version allows: transition ids, end steps, who may act now.

Transition ids: the contract makes `transition_id` an integer, and a task must
be moved by its pinned version, never the live draft. A version's definition
is immutable and its "transitions" list is stored in a fixed order, so the
1-based position of a transition in that list is a stable id for as long as
the version exists. Ids of different versions are unrelated.

Pure reads, no writes: the serializer (available_transitions) and the action
services (transitions_of, is_end_step) share these rules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from task.models import ACTIVE_ITEM_STATUSES

if TYPE_CHECKING:
    from task.models import Task
    from workflow.models import WorkflowVersion


def transitions_of(version: WorkflowVersion) -> list[dict[str, Any]]:
    """Each transition of the version as {id, name, from, to}; id = 1-based position in the definition."""
    return [
        {"id": position, "name": transition["name"], "from": transition["from"], "to": transition["to"]}
        for position, transition in enumerate(version.definition["transitions"], start=1)
    ]


def transition_by_id(version: WorkflowVersion, transition_id: int) -> dict[str, Any] | None:
    """The version's transition with that id, or None when the version has none."""
    transitions = version.definition["transitions"]
    if not 1 <= transition_id <= len(transitions):
        return None
    transition = transitions[transition_id - 1]
    return {"id": transition_id, "name": transition["name"], "from": transition["from"], "to": transition["to"]}


def step_of(version: WorkflowVersion, key: str) -> dict[str, Any] | None:
    """The version's step definition with that key, or None."""
    return next((step for step in version.definition["steps"] if step["key"] == key), None)


def outgoing(version: WorkflowVersion, key: str) -> list[dict[str, Any]]:
    """The transitions (with ids) that start at step `key`."""
    return [transition for transition in transitions_of(version) if transition["from"] == key]


def is_end_step(version: WorkflowVersion, key: str) -> bool:
    """A step from which the task can only be finished: no outgoing transitions in this version.

    The contract finishes a task with `transition_id: null` on a step without
    outgoing transitions; the designer's `is_end` flag alone does not decide it.
    """
    return not outgoing(version, key)


def holds_active_item(task: Task, user_id: int) -> bool:
    """Whether the user holds a new/in_progress/on_hold item on the task's current step.

    Uses `task.items.all()`, so a prefetched list costs no query.
    """
    return any(
        item.user_id == user_id and item.step_key == task.current_step_key and item.status in ACTIVE_ITEM_STATUSES
        for item in task.items.all()
    )


def available_transitions(task: Task, user_id: int) -> list[dict[str, Any]]:
    """Transitions the user can take now: [{id, name, to_step}] from the current step; [] if not assigned there."""
    if not holds_active_item(task, user_id):
        return []
    return [
        {"id": transition["id"], "name": transition["name"], "to_step": transition["to"]}
        for transition in outgoing(task.workflow_version, task.current_step_key)
    ]
