"""workflow_match: which published workflow a ticket's department/category/sub-category selects."""

from __future__ import annotations

import pytest

from workflow.models import Workflow, WorkflowStatus
from workflow.selectors import workflow_match
from workflow.services import workflow_delete, workflow_pause, workflow_publish, workflow_retire, workflow_update
from workflow.tests.factories import three_step_workflow

pytestmark = pytest.mark.django_db


def _published(actor, **keys) -> Workflow:
    workflow = three_step_workflow(**keys)
    workflow_publish(workflow=workflow, actor=actor)
    workflow.refresh_from_db()
    return workflow


def _match(tenant, department="IT Department", category="Access", sub_category=None):
    return workflow_match(tenant=tenant, department=department, category=category, sub_category=sub_category)


@pytest.fixture
def exact_and_fallback(tenant, actor) -> tuple[Workflow, Workflow]:
    fallback = _published(actor, department="IT Department", category="Access", sub_category="")
    exact = _published(actor, department="IT Department", category="Access", sub_category="VPN")
    return exact, fallback


def test_a_workflow_with_all_three_keys_equal_beats_the_blank_sub_category_fallback(tenant, exact_and_fallback):
    exact, _ = exact_and_fallback

    assert _match(tenant, sub_category="VPN") == exact


def test_the_blank_sub_category_workflow_is_used_when_no_workflow_has_the_sub_category(tenant, exact_and_fallback):
    _, fallback = exact_and_fallback

    assert _match(tenant, sub_category="Printer") == fallback
    assert _match(tenant, sub_category="") == fallback
    assert _match(tenant, sub_category=None) == fallback


def test_without_an_exact_or_fallback_workflow_nothing_matches(tenant, actor):
    _published(actor, department="IT Department", category="Access", sub_category="VPN")

    assert _match(tenant, sub_category="Printer") is None
    assert _match(tenant, category="Hardware", sub_category="VPN") is None
    assert _match(tenant, department="Facilities", sub_category="VPN") is None


def test_letter_case_and_surrounding_spaces_are_ignored(tenant, actor):
    workflow = _published(actor, department=" IT Department", category="ACCESS ", sub_category="Vpn")

    assert _match(tenant, department="it department  ", category="  access", sub_category=" VPN ") == workflow


def test_the_match_carries_its_current_version(tenant, exact_and_fallback):
    exact, _ = exact_and_fallback

    matched = _match(tenant, sub_category="VPN")

    assert matched.current_version == exact.current_version
    assert matched.current_version.number == 1


def test_a_draft_edited_after_publishing_still_matches_by_its_published_keys(tenant, actor):
    workflow = _published(actor, department="IT Department", category="Access", sub_category="VPN")
    workflow_update(workflow=workflow, actor=actor, category="Network")

    assert _match(tenant, sub_category="VPN") == workflow
    assert _match(tenant, category="Network", sub_category="VPN") is None


@pytest.mark.parametrize(
    "make_unavailable",
    [
        pytest.param(lambda w, actor: workflow_pause(workflow=w, actor=actor), id="paused"),
        pytest.param(lambda w, actor: workflow_retire(workflow=w, actor=actor), id="retired"),
        pytest.param(lambda w, actor: workflow_delete(workflow=w, actor=actor), id="deleted"),
    ],
)
def test_paused_retired_and_deleted_workflows_are_not_matched(tenant, actor, make_unavailable):
    workflow = _published(actor, department="IT Department", category="Access", sub_category="VPN")

    make_unavailable(workflow, actor)

    assert _match(tenant, sub_category="VPN") is None


def test_a_paused_exact_workflow_falls_back_to_the_blank_sub_category_one(tenant, actor, exact_and_fallback):
    exact, fallback = exact_and_fallback

    workflow_pause(workflow=exact, actor=actor)

    assert _match(tenant, sub_category="VPN") == fallback


def test_a_never_published_workflow_is_not_matched(tenant):
    three_step_workflow(department="IT Department", category="Access", sub_category="VPN")

    assert _match(tenant, sub_category="VPN") is None


def test_a_workflow_of_another_tenant_is_not_matched(tenant, other_tenant, actor):
    _published(actor, tenant=other_tenant, department="IT Department", category="Access", sub_category="VPN")

    assert _match(tenant, sub_category="VPN") is None
    assert _match(other_tenant, sub_category="VPN") is not None


def test_the_match_is_deterministic_even_if_two_published_workflows_tie(tenant, actor):
    first = _published(actor, department="IT Department", category="Access")
    workflow_pause(workflow=first, actor=actor)
    second = _published(actor, department="IT Department", category="Access")
    # Publishing refuses such a tie; force one to see the tie-break (lowest workflow id).
    Workflow.objects.filter(pk=first.pk).update(status=WorkflowStatus.PUBLISHED)

    assert {_match(tenant).pk for _ in range(5)} == {min(first.pk, second.pk)}


@pytest.mark.parametrize("others", [0, 20])
def test_matching_is_one_query_however_many_workflows_exist(
    tenant, actor, others, django_assert_num_queries, exact_and_fallback
):
    for n in range(others):
        _published(actor, department="IT Department", category=f"Other {n}", sub_category="VPN")
    exact, _ = exact_and_fallback

    with django_assert_num_queries(1):
        matched = _match(tenant, sub_category="VPN")
        assert (matched.name, matched.current_version.number) == (exact.name, 1)
