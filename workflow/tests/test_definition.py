"""Validating a workflow graph as plain data, and the definition a version freezes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

import pytest

from workflow.definition import (
    Draft,
    DraftStep,
    Problem,
    ProblemCode,
    RoleRef,
    definition_hash,
    definition_of,
    draft_validate,
)
from workflow.tests.factories import DraftFactory, DraftStepFactory, DraftTransitionFactory


def _valid_draft() -> Draft:
    """s1 (start) -Submit-> s2 -Approve-> s3 (end)."""
    return DraftFactory.build(
        steps=[
            DraftStepFactory.build(ref="s1", is_start=True),
            DraftStepFactory.build(ref="s2"),
            DraftStepFactory.build(ref="s3", is_end=True),
        ],
        transitions=[
            DraftTransitionFactory.build(ref="t1", from_ref="s1", to_ref="s2", name="Submit"),
            DraftTransitionFactory.build(ref="t2", from_ref="s2", to_ref="s3", name="Approve"),
        ],
    )


def _step(draft: Draft, ref: str) -> DraftStep:
    return next(step for step in draft.steps if step.ref == ref)


def _codes(problems: list[Problem]) -> list[ProblemCode]:
    return [problem.code for problem in problems]


def _only(problems: list[Problem], code: ProblemCode) -> Problem:
    assert _codes(problems) == [code], problems
    return problems[0]


def _define(draft: Draft) -> dict:
    return definition_of(draft, name="Repair", description="", completion_action="")


def test_a_linear_graph_with_roles_slas_and_keys_has_no_problems():
    assert draft_validate(_valid_draft()) == []


# --- one test per problem code -------------------------------------------------------


def test_a_draft_without_steps_is_reported_as_having_no_steps():
    problem = _only(draft_validate(DraftFactory.build()), ProblemCode.NO_STEPS)

    assert problem.step is None


def test_a_draft_without_a_start_step_is_reported():
    draft = _valid_draft()
    _step(draft, "s1").is_start = False

    _only(draft_validate(draft), ProblemCode.NO_START_STEP)


def test_every_one_of_several_start_steps_is_named():
    draft = _valid_draft()
    _step(draft, "s2").is_start = True

    problems = draft_validate(draft)

    assert _codes(problems) == [ProblemCode.MULTIPLE_START_STEPS] * 2
    assert {problem.step for problem in problems} == {"s1", "s2"}


def test_a_draft_without_an_end_step_is_reported():
    draft = _valid_draft()
    _step(draft, "s3").is_end = False

    _only(draft_validate(draft), ProblemCode.NO_END_STEP)


def test_a_step_the_start_cannot_reach_is_named():
    draft = _valid_draft()
    draft.steps.append(DraftStepFactory.build(ref="island", is_end=True))

    problem = _only(draft_validate(draft), ProblemCode.UNREACHABLE_STEP)

    assert problem.step == "island"


def test_a_step_from_which_no_end_can_be_reached_is_named():
    draft = _valid_draft()
    draft.steps.append(DraftStepFactory.build(ref="dead-end"))
    draft.transitions.append(DraftTransitionFactory.build(ref="t9", from_ref="s2", to_ref="dead-end", name="Park"))

    problem = _only(draft_validate(draft), ProblemCode.NO_PATH_TO_END)

    assert problem.step == "dead-end"


def test_a_step_without_an_owning_role_is_named():
    draft = _valid_draft()
    _step(draft, "s2").role = None

    problem = _only(draft_validate(draft), ProblemCode.MISSING_ROLE)

    assert problem.step == "s2"


def test_a_step_owned_by_a_role_that_does_not_exist_is_named_with_that_role():
    draft = _valid_draft()
    _step(draft, "s2").role = None
    _step(draft, "s2").unknown_role = 777

    problem = _only(draft_validate(draft), ProblemCode.UNKNOWN_ROLE)

    assert problem.step == "s2"
    assert "777" in problem.message


def test_a_step_escalating_to_a_role_that_does_not_exist_is_named():
    draft = _valid_draft()
    _step(draft, "s3").unknown_escalation_role = 888

    problem = _only(draft_validate(draft), ProblemCode.UNKNOWN_ESCALATION_ROLE)

    assert problem.step == "s3"
    assert "888" in problem.message


def test_a_step_with_a_negative_weight_is_named():
    draft = _valid_draft()
    _step(draft, "s2").weight = Decimal("-0.5")

    problem = _only(draft_validate(draft), ProblemCode.NEGATIVE_WEIGHT)

    assert problem.step == "s2"


def test_a_zero_weight_is_allowed():
    draft = _valid_draft()
    _step(draft, "s2").weight = Decimal("0")

    assert draft_validate(draft) == []


def test_two_steps_with_the_same_id_are_reported():
    draft = _valid_draft()
    draft.steps.append(DraftStepFactory.build(ref="s2", key="another-key"))

    problem = _only(draft_validate(draft), ProblemCode.DUPLICATE_STEP)

    assert problem.step == "s2"


def test_two_steps_with_the_same_key_are_reported():
    draft = _valid_draft()
    _step(draft, "s3").key = _step(draft, "s2").key

    problem = _only(draft_validate(draft), ProblemCode.DUPLICATE_STEP)

    assert problem.step == "s3"
    assert _step(draft, "s2").key in problem.message


def test_a_transition_to_a_step_that_does_not_exist_is_named():
    draft = _valid_draft()
    draft.transitions.append(DraftTransitionFactory.build(ref="t-ghost", from_ref="s2", to_ref="ghost"))

    problem = _only(draft_validate(draft), ProblemCode.DANGLING_TRANSITION)

    assert problem.transition == "t-ghost"
    assert "ghost" in problem.message


def test_a_transition_back_to_its_own_step_is_named():
    draft = _valid_draft()
    draft.transitions.append(DraftTransitionFactory.build(ref="t-loop", from_ref="s2", to_ref="s2", name="Again"))

    problem = _only(draft_validate(draft), ProblemCode.SELF_LOOP)

    assert problem.transition == "t-loop"


def test_the_same_transition_given_twice_is_named_even_in_other_letter_case():
    draft = _valid_draft()
    draft.transitions.append(DraftTransitionFactory.build(ref="t-again", from_ref="s1", to_ref="s2", name=" submit "))

    problem = _only(draft_validate(draft), ProblemCode.DUPLICATE_TRANSITION)

    assert problem.transition == "t-again"


def test_an_end_step_with_an_outgoing_transition_names_the_step_and_the_transition():
    draft = _valid_draft()
    draft.transitions.append(DraftTransitionFactory.build(ref="t-reopen", from_ref="s3", to_ref="s1", name="Reopen"))

    problem = _only(draft_validate(draft), ProblemCode.END_STEP_HAS_OUTGOING)

    assert (problem.step, problem.transition) == ("s3", "t-reopen")


@pytest.mark.parametrize("bad", [None, timedelta(0), timedelta(hours=-1)])
def test_a_missing_or_non_positive_sla_is_reported_with_its_priority(bad):
    draft = _valid_draft()
    draft.sla["low"] = bad

    problem = _only(draft_validate(draft), ProblemCode.SLA_INCOMPLETE)

    assert "low" in problem.message


@pytest.mark.parametrize(
    ("priority", "value"),
    [("urgent", timedelta(hours=8)), ("high", timedelta(days=3)), ("low", timedelta(days=1))],
)
def test_slas_out_of_the_urgent_high_medium_low_order_are_reported(priority, value):
    draft = _valid_draft()
    draft.sla[priority] = value

    _only(draft_validate(draft), ProblemCode.SLA_NOT_ORDERED)


@pytest.mark.parametrize(("field", "value"), [("department", "  "), ("category", "")])
def test_a_blank_department_or_category_is_reported(field, value):
    draft = _valid_draft()
    setattr(draft, field, value)

    _only(draft_validate(draft), ProblemCode.MATCH_KEYS_INCOMPLETE)


def test_a_blank_sub_category_is_allowed():
    draft = _valid_draft()
    draft.sub_category = ""

    assert draft_validate(draft) == []


def test_another_published_workflow_with_the_same_keys_is_reported_by_name():
    problem = _only(draft_validate(_valid_draft(), conflicting_workflow="Asset Check In"), ProblemCode.AMBIGUOUS_MATCH)

    assert "Asset Check In" in problem.message


def _add_dead_end(draft: Draft) -> None:
    draft.steps.append(DraftStepFactory.build(ref="x"))
    draft.transitions.append(DraftTransitionFactory.build(from_ref="s2", to_ref="x"))


# Every code, produced by a draft made for it: a new ProblemCode without an example fails below.
_EXAMPLES: dict[ProblemCode, Callable[[], list[Problem]]] = {
    ProblemCode.NO_STEPS: lambda: draft_validate(DraftFactory.build()),
    ProblemCode.NO_START_STEP: lambda: draft_validate(_changed(lambda d: setattr(_step(d, "s1"), "is_start", False))),
    ProblemCode.MULTIPLE_START_STEPS: lambda: draft_validate(
        _changed(lambda d: setattr(_step(d, "s2"), "is_start", True))
    ),
    ProblemCode.NO_END_STEP: lambda: draft_validate(_changed(lambda d: setattr(_step(d, "s3"), "is_end", False))),
    ProblemCode.UNREACHABLE_STEP: lambda: draft_validate(
        _changed(lambda d: d.steps.append(DraftStepFactory.build(ref="x", is_end=True)))
    ),
    ProblemCode.NO_PATH_TO_END: lambda: draft_validate(_changed(_add_dead_end)),
    ProblemCode.MISSING_ROLE: lambda: draft_validate(_changed(lambda d: setattr(_step(d, "s2"), "role", None))),
    ProblemCode.UNKNOWN_ROLE: lambda: draft_validate(_changed(lambda d: setattr(_step(d, "s2"), "unknown_role", 1))),
    ProblemCode.UNKNOWN_ESCALATION_ROLE: lambda: draft_validate(
        _changed(lambda d: setattr(_step(d, "s2"), "unknown_escalation_role", 1))
    ),
    ProblemCode.NEGATIVE_WEIGHT: lambda: draft_validate(
        _changed(lambda d: setattr(_step(d, "s2"), "weight", Decimal(-1)))
    ),
    ProblemCode.DUPLICATE_STEP: lambda: draft_validate(
        _changed(lambda d: d.steps.append(DraftStepFactory.build(ref="s2", key="other")))
    ),
    ProblemCode.DANGLING_TRANSITION: lambda: draft_validate(
        _changed(lambda d: d.transitions.append(DraftTransitionFactory.build(from_ref="s1", to_ref="nowhere")))
    ),
    ProblemCode.SELF_LOOP: lambda: draft_validate(
        _changed(lambda d: d.transitions.append(DraftTransitionFactory.build(from_ref="s1", to_ref="s1")))
    ),
    ProblemCode.DUPLICATE_TRANSITION: lambda: draft_validate(
        _changed(lambda d: d.transitions.append(DraftTransitionFactory.build(from_ref="s1", to_ref="s2")))
    ),
    ProblemCode.END_STEP_HAS_OUTGOING: lambda: draft_validate(
        _changed(lambda d: d.transitions.append(DraftTransitionFactory.build(from_ref="s3", to_ref="s2")))
    ),
    ProblemCode.SLA_INCOMPLETE: lambda: draft_validate(_changed(lambda d: d.sla.update(high=None))),
    ProblemCode.SLA_NOT_ORDERED: lambda: draft_validate(_changed(lambda d: d.sla.update(low=timedelta(hours=1)))),
    ProblemCode.MATCH_KEYS_INCOMPLETE: lambda: draft_validate(_changed(lambda d: setattr(d, "department", ""))),
    ProblemCode.AMBIGUOUS_MATCH: lambda: draft_validate(_valid_draft(), conflicting_workflow="Other"),
}


def _changed(change: Callable[[Draft], object]) -> Draft:
    draft = _valid_draft()
    change(draft)
    return draft


def test_every_problem_code_has_an_example_draft():
    assert set(_EXAMPLES) == set(ProblemCode)


@pytest.mark.parametrize("code", list(ProblemCode), ids=str)
def test_each_example_draft_produces_exactly_its_problem_code(code):
    assert set(_codes(_EXAMPLES[code]())) == {code}


def test_validation_returns_every_problem_at_once():
    draft = _valid_draft()
    _step(draft, "s2").role = None
    draft.transitions.append(DraftTransitionFactory.build(ref="t-loop", from_ref="s1", to_ref="s1"))
    draft.sla["urgent"] = None
    draft.category = " "

    problems = draft_validate(draft)

    assert set(_codes(problems)) == {
        ProblemCode.MISSING_ROLE,
        ProblemCode.SELF_LOOP,
        ProblemCode.SLA_INCOMPLETE,
        ProblemCode.MATCH_KEYS_INCOMPLETE,
    }
    assert len(problems) == 4
    by_code = {problem.code: problem for problem in problems}
    assert by_code[ProblemCode.MISSING_ROLE].step == "s2"
    assert by_code[ProblemCode.SELF_LOOP].transition == "t-loop"


def test_a_problem_as_a_dict_carries_code_message_and_what_it_concerns():
    problem = Problem(ProblemCode.SELF_LOOP, "Loops.", transition="t1")

    assert problem.as_dict() == {"code": "self_loop", "message": "Loops.", "transition": "t1"}
    assert Problem(ProblemCode.NO_STEPS, "Empty.").as_dict() == {"code": "no_steps", "message": "Empty."}


# --- the frozen definition and its hash -------------------------------------------------


def test_the_definition_names_steps_by_key_and_roles_by_pk_auth_id_and_name():
    draft = _valid_draft()
    _step(draft, "s2").role = RoleRef(pk=5, role_id=12, name="Asset Manager")
    _step(draft, "s2").escalation_role = RoleRef(pk=6, role_id=None, name="Admin")
    _step(draft, "s2").weight = Decimal("10.00")

    definition = _define(draft)

    resolve = next(step for step in definition["steps"] if step["key"] == _step(draft, "s2").key)
    assert resolve["role"] == {"id": 5, "role_id": 12, "name": "Asset Manager"}
    assert resolve["escalation_role"] == {"id": 6, "role_id": None, "name": "Admin"}
    assert resolve["weight"] == "10"
    assert {"from": "key-s1", "to": "key-s2", "name": "Submit"} in definition["transitions"]
    assert definition["sla"] == {"urgent": 4 * 3600, "high": 8 * 3600, "medium": 2 * 86400, "low": 5 * 86400}
    assert definition["workflow"]["department"] == "IT Department"


def test_moving_steps_on_the_canvas_does_not_change_the_hash():
    draft = _valid_draft()
    before = definition_hash(_define(draft))
    for step in draft.steps:
        step.x, step.y = step.x + 300, step.y - 40

    assert definition_hash(_define(draft)) == before


def test_the_order_steps_and_transitions_are_listed_in_does_not_change_the_hash():
    draft = _valid_draft()
    before = definition_hash(_define(draft))
    draft.steps.reverse()
    draft.transitions.reverse()

    assert definition_hash(_define(draft)) == before


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda d: setattr(_step(d, "s2"), "name", "Renamed"), id="step name"),
        pytest.param(lambda d: setattr(_step(d, "s2"), "weight", Decimal("2.5")), id="weight"),
        pytest.param(lambda d: setattr(_step(d, "s2"), "role", RoleRef(99, 99, "Other")), id="owning role"),
        pytest.param(lambda d: setattr(_step(d, "s2"), "escalation_role", RoleRef(98, 98, "Boss")), id="escalation"),
        pytest.param(lambda d: setattr(d.transitions[0], "name", "Send"), id="transition name"),
        pytest.param(
            lambda d: d.transitions.append(DraftTransitionFactory.build(from_ref="s2", to_ref="s1", name="Reject")),
            id="added transition",
        ),
        pytest.param(lambda d: d.sla.update(urgent=timedelta(hours=3)), id="SLA"),
        pytest.param(lambda d: setattr(d, "sub_category", "Check In"), id="matching key"),
        pytest.param(lambda d: setattr(_step(d, "s2"), "assignee_count", 2), id="assignee count"),
    ],
)
def test_a_change_of_behaviour_changes_the_hash(change):
    draft = _valid_draft()
    before = definition_hash(_define(draft))

    change(draft)

    assert definition_hash(_define(draft)) != before
