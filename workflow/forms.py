"""Forms of the designer's admin pages.

They parse and display; every rule lives in workflow.services. The one
thing the workflow form adds is how a refusal from a service (a stale edit,
a graph that cannot be stored, a duplicate name) becomes an error shown on
the page: see `WorkflowAdminForm.service_refusal` and WorkflowAdmin.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django import forms

from step.models import Step, Transition
from workflow.models import Workflow, WorkflowVersion
from workflow.services import WORKFLOW_FIELDS, EditConflict, WorkflowInvalid
from workflow_api.core.errors import ApiError


class WorkflowAdminForm(forms.ModelForm):
    """The workflow's own fields, plus the edit version the page was loaded with.

    `loaded_edit_version` travels in a hidden field and is passed to the
    services as `expected_edit_version`: if someone saved in between, the
    save is refused instead of silently overwriting their change.
    """

    loaded_edit_version = forms.IntegerField(widget=forms.HiddenInput, required=False, min_value=1)

    # Set (on a per-request subclass) by WorkflowAdmin when a service refused
    # the save; clean() turns it into form errors.
    service_refusal: ClassVar[ApiError | None] = None

    class Meta:
        model = Workflow
        fields = ["tenant", *WORKFLOW_FIELDS]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.initial.setdefault("loaded_edit_version", self.instance.edit_version)
            self.fields["loaded_edit_version"].required = True
            self.fields["loaded_edit_version"].error_messages["required"] = (
                "The page did not say which version of the workflow it shows. Reload it and apply your change again."
            )
        for name in ("description",):
            if name in self.fields:
                self.fields[name].widget.attrs.update({"rows": 3})

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        refusal = self.service_refusal
        if refusal is not None:
            for field, message in refusal_messages(refusal):
                self.add_error(field if field in self.fields else None, message)
        return cleaned


def refusal_messages(refusal: ApiError) -> list[tuple[str | None, str]]:
    """(field or None, message) pairs describing why a service refused a save."""
    if isinstance(refusal, EditConflict):
        return [(None, refusal.message)]
    if isinstance(refusal, WorkflowInvalid):
        return [(None, refusal.message), *((None, f"{p.code}: {p.message}") for p in refusal.problems)]
    field_errors = refusal.errors or {}
    pairs: list[tuple[str | None, str]] = [
        (field, str(message))
        for field, messages in field_errors.items()
        for message in (messages if isinstance(messages, list) else [messages])
    ]
    return pairs or [(None, refusal.message)]


class StepInlineForm(forms.ModelForm):
    """One step row. The key is chosen once (or derived from the name) and never changes."""

    class Meta:
        model = Step
        fields = [
            "name",
            "key",
            "role",
            "escalation_role",
            "is_start",
            "is_end",
            "weight",
            "assignment_strategy",
            "assignee_count",
            "instruction",
            "x",
            "y",
        ]
        widgets = {
            "instruction": forms.Textarea(attrs={"rows": 1, "cols": 24}),
            "x": forms.NumberInput(attrs={"style": "width: 5em"}),
            "y": forms.NumberInput(attrs={"style": "width: 5em"}),
            "weight": forms.NumberInput(attrs={"style": "width: 5em", "step": "0.01", "min": "0"}),
            "assignee_count": forms.NumberInput(attrs={"style": "width: 4em", "min": "1"}),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "key" in self.fields:
            key = self.fields["key"]
            key.required = False
            key.widget.attrs.update({"placeholder": "from the name", "style": "width: 9em"})
            if self.instance.pk is not None:
                # Running tasks are mapped between versions by key.
                key.disabled = True
        if "name" in self.fields:
            self.fields["name"].widget.attrs.update({"style": "width: 12em"})
        for name in ("role", "escalation_role"):
            if name in self.fields:
                self.fields[name].widget.attrs.update({"style": "width: 13em"})


class TransitionInlineForm(forms.ModelForm):
    class Meta:
        model = Transition
        fields = ["from_step", "name", "to_step"]


class VersionDiffForm(forms.Form):
    """Which two versions of a workflow to compare."""

    a = forms.TypedChoiceField(label="Version A", coerce=int)
    b = forms.TypedChoiceField(label="Version B", coerce=int)

    def __init__(self, *args: Any, versions: list[WorkflowVersion], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = [(v.number, f"Version {v.number} ({v.published_at:%Y-%m-%d %H:%M})") for v in versions]
        self.fields["a"].choices = choices  # type: ignore[attr-defined]
        self.fields["b"].choices = choices  # type: ignore[attr-defined]
