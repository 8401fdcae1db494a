"""The server-side SVG of a workflow graph: complete, marked, laid out, and safe to embed."""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from typing import Any

from workflow.definition import RoleRef
from workflow.graph_svg import BOX_W, graph_svg
from workflow.tests.factories import DraftFactory, DraftStepFactory, DraftTransitionFactory

SVG = "{http://www.w3.org/2000/svg}"


def definition(**overrides: Any) -> dict[str, Any]:
    """A version's definition, as WorkflowVersion stores it (only what drawing reads)."""
    steps = [
        {"key": "triage", "name": "Triage Ticket", "role": {"name": "Admin"}, "is_start": True, "x": 0, "y": 0},
        {"key": "resolve", "name": "Resolve Ticket", "role": {"name": "Asset Manager"}, "x": 0, "y": 0},
        {"key": "finalize", "name": "Finalize Ticket", "role": {"name": "Admin"}, "is_end": True, "x": 0, "y": 0},
    ]
    transitions = [
        {"from": "triage", "to": "resolve", "name": "Submit"},
        {"from": "resolve", "to": "finalize", "name": "Approve"},
        {"from": "resolve", "to": "triage", "name": "Reject"},
    ]
    return {"steps": steps, "transitions": transitions, **overrides}


def parse(svg: str) -> ET.Element:
    # Our own output, parsed to prove it is well-formed XML.
    return ET.fromstring(svg)  # noqa: S314


def boxes(svg: str) -> dict[str, tuple[float, float]]:
    """Top-left corner of each step's box, by step id."""
    root = parse(svg)
    return {
        group.get("data-step", ""): (float(rect.get("x", "0")), float(rect.get("y", "0")))
        for group in root.iter(f"{SVG}g")
        if "step" in group.get("class", "").split()
        for rect in group.findall(f"{SVG}rect")[:1]
    }


def texts(svg: str) -> list[str]:
    return [element.text or "" for element in parse(svg).iter(f"{SVG}text")]


def test_every_step_role_and_transition_appears():
    svg = graph_svg(definition())

    shown = texts(svg)
    for label in ("Triage Ticket", "Resolve Ticket", "Finalize Ticket", "Submit", "Approve", "Reject"):
        assert label in shown
    assert "role: Asset Manager" in shown
    assert len(parse(svg).findall(f".//{SVG}g[@class='transition']")) == 3


def test_start_and_end_steps_are_marked():
    svg = graph_svg(definition())

    classes = {
        group.get("data-step"): group.get("class") for group in parse(svg).iter(f"{SVG}g") if group.get("data-step")
    }
    assert classes == {"triage": "step start", "resolve": "step", "finalize": "step end"}
    assert texts(svg).count("START") == 1
    assert texts(svg).count("END") == 1


def test_names_are_escaped_so_user_input_cannot_inject_markup():
    hostile = definition()
    hostile["steps"][0]["name"] = "<script>alert(1)</script>"
    hostile["steps"][1]["role"] = {"name": 'Role" onload="alert(2)'}
    hostile["transitions"][0]["name"] = "</text><script>x</script>"

    svg = graph_svg(hostile, label="<b>label</b>")

    assert "<script" not in svg
    assert "<b>" not in svg
    assert "&lt;script&gt;" in svg
    assert 'onload="' not in svg
    # Boxes truncate long names; the tooltips carry them whole, as text.
    tooltips = [element.text or "" for element in parse(svg).iter(f"{SVG}title")]
    assert any(tip.startswith("<script>alert(1)</script>") for tip in tooltips)
    assert "</text><script>x</script>" in tooltips


def test_steps_are_laid_out_automatically_when_none_has_a_position():
    corners = boxes(graph_svg(definition()))

    assert len(set(corners.values())) == 3
    # Columns follow the flow from the start step.
    assert corners["triage"][0] < corners["resolve"][0] < corners["finalize"][0]


def test_steps_are_drawn_where_the_designer_put_them():
    placed = definition()
    for step, (x, y) in zip(placed["steps"], ((600, 40), (300, 300), (0, 40)), strict=True):
        step["x"], step["y"] = x, y

    corners = boxes(graph_svg(placed))

    assert corners["triage"] == (600, 40)
    assert corners["resolve"] == (300, 300)
    assert corners["finalize"] == (0, 40)


def test_positions_closer_than_a_box_are_spread_apart_keeping_the_arrangement():
    cramped = definition()
    for step, (x, y) in zip(cramped["steps"], ((10, 80), (120, 80), (240, 80)), strict=True):
        step["x"], step["y"] = x, y

    corners = boxes(graph_svg(cramped))

    xs = [corners[key][0] for key in ("triage", "resolve", "finalize")]
    assert xs == sorted(xs)
    assert min(b - a for a, b in itertools.pairwise(xs)) >= BOX_W
    assert len({y for _, y in corners.values()}) == 1


def test_a_step_the_start_cannot_reach_still_gets_its_own_box():
    lonely = definition()
    lonely["steps"].append({"key": "orphan", "name": "Orphan", "role": None, "x": 0, "y": 0})

    svg = graph_svg(lonely)

    corners = boxes(svg)
    assert len(set(corners.values())) == 4
    assert corners["orphan"][0] > corners["finalize"][0]
    assert "no owning role" in texts(svg)


def test_a_draft_is_drawn_by_its_refs_and_problem_steps_are_highlighted():
    draft = DraftFactory.build(
        steps=[
            DraftStepFactory.build(ref="1", name="Triage", is_start=True),
            DraftStepFactory.build(ref="2", name="Resolve", role=None, unknown_role=77),
            DraftStepFactory.build(ref="3", name="Close", is_end=True, role=RoleRef(pk=9, role_id=None, name="Admin")),
        ],
        transitions=[
            DraftTransitionFactory.build(ref="10", from_ref="1", to_ref="2", name="Submit"),
            DraftTransitionFactory.build(ref="11", from_ref="2", to_ref="3", name="Approve"),
        ],
    )

    svg = graph_svg(draft, highlight={"2"})

    root = parse(svg)
    flagged = [group.get("data-step") for group in root.iter(f"{SVG}g") if "problem" in group.get("class", "")]
    assert flagged == ["2"]
    shown = texts(svg)
    assert "unknown role 77" in shown
    assert "role: Admin" in shown
    assert {"Triage", "Resolve", "Close", "Submit", "Approve"} <= set(shown)


def test_transitions_to_unknown_steps_are_left_out_and_an_empty_graph_says_so():
    dangling = definition(transitions=[{"from": "triage", "to": "nowhere", "name": "Lost"}])

    assert "Lost" not in texts(graph_svg(dangling))
    assert "No steps yet" in texts(graph_svg({"steps": [], "transitions": []}))
