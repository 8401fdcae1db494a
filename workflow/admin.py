"""The workflow designer's admin: edit a draft graph, see what blocks publishing, publish, compare, migrate.

Every write goes through workflow.services; this module parses forms,
calls one service and renders. See WorkflowAdmin for how a save works.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.options import IS_POPUP_VAR
from django.contrib.admin.utils import unquote
from django.contrib.admin.widgets import RelatedFieldWidgetWrapper
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import QuerySet
from django.forms.formsets import BaseFormSet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.decorators import method_decorator
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.views.decorators.http import require_POST

from audit.services import Actor
from role.selectors import role_list
from step.models import Step, Transition
from workflow.definition import Draft, Problem
from workflow.forms import StepInlineForm, TransitionInlineForm, VersionDiffForm, WorkflowAdminForm
from workflow.graph_svg import graph_svg
from workflow.models import PRIORITIES, Workflow, WorkflowStatus, WorkflowVersion
from workflow.selectors import version_diff
from workflow.services import (
    WORKFLOW_FIELDS,
    EditConflict,
    Graph,
    GraphEdge,
    GraphNode,
    WorkflowInvalid,
    draft_from_db,
    workflow_create,
    workflow_graph_replace,
    workflow_migrate,
    workflow_pause,
    workflow_problems,
    workflow_publish,
    workflow_retire,
    workflow_update,
)
from workflow_api.core.admin_mixins import ReadOnlyAdminMixin
from workflow_api.core.errors import ApiError
from workflow_api.core.tenancy import default_tenant

# Where WorkflowAdmin.changeform_view leaves a service's refusal for get_form (one request only).
_REFUSAL_ATTR = "_workflow_admin_refusal"


# --- inlines --------------------------------------------------------------------------


class _PlainSelectsMixin:
    """Plain <select>s in the inline rows: no view/change icons per row (roles and steps are not edited here)."""

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        formfield = super().formfield_for_dbfield(db_field, request, **kwargs)  # type: ignore[misc]
        if formfield is not None and isinstance(formfield.widget, RelatedFieldWidgetWrapper):
            formfield.widget = formfield.widget.widget
        return formfield


class StepInline(_PlainSelectsMixin, admin.TabularInline):
    model = Step
    form = StepInlineForm
    fields = tuple(StepInlineForm.Meta.fields)
    ordering = ["id"]

    def get_extra(self, request: HttpRequest, obj: Workflow | None = None, **kwargs: Any) -> int:
        return 1 if obj is not None and obj.steps.exists() else 3

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        formset = super().get_formset(request, obj, **kwargs)
        # Only the workflow's own tenant's live roles can own or escalate its steps.
        roles = role_list(tenant=obj.tenant if obj is not None else default_tenant())
        for name in ("role", "escalation_role"):
            field = formset.form.base_fields[name]
            field.queryset = roles  # type: ignore[attr-defined]
            field.label_from_instance = _role_label  # type: ignore[attr-defined]
        return formset


def _role_label(role: Any) -> str:
    active = getattr(role, "active_member_count", None)
    return role.name if active is None else f"{role.name} ({active} active)"


class TransitionInline(_PlainSelectsMixin, admin.TabularInline):
    model = Transition
    form = TransitionInlineForm
    fields = ("from_step", "name", "to_step")
    fk_name = "workflow"
    ordering = ["id"]

    def get_extra(self, request: HttpRequest, obj: Workflow | None = None, **kwargs: Any) -> int:
        if obj is None or not obj.steps.exists():
            return 0  # transitions join saved steps
        return 1 if obj.transitions.exists() else 2

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        formset = super().get_formset(request, obj, **kwargs)
        steps = Step.objects.filter(workflow=obj).order_by("id") if obj is not None else Step.objects.none()
        for name in ("from_step", "to_step"):
            formset.form.base_fields[name].queryset = steps  # type: ignore[attr-defined]
        return formset


# --- the workflow -----------------------------------------------------------------------


@admin.register(Workflow)
class WorkflowAdmin(admin.ModelAdmin):
    """The designer's page.

    How a save works. Django validates the workflow form and the two inline
    formsets as usual; nothing is saved by the forms themselves. Then, in
    ONE transaction (changeform_view wraps Django's view in
    `transaction.atomic`):

    - save_model: a new workflow is created with `workflow_create`;
    - save_related: changed fields go to `workflow_update` and a changed
      graph (built from the formsets: stored steps keep their pk as id, new
      rows get temporary ids) to `workflow_graph_replace`, both with the
      `edit_version` the page was loaded with (a hidden field) as
      `expected_edit_version`.

    When a service refuses (EditConflict, WorkflowInvalid, a duplicate
    name: all ApiError), the exception leaves the atomic block, so nothing
    of the save remains, and changeform_view runs Django's view once more
    with the refusal attached to the request: get_form hands it to the form,
    whose clean() turns it into errors. The page is re-rendered with the
    designer's input intact and the reason on top, never a 500 and never a
    half-saved workflow. The rules themselves stay in the services.

    A page loaded before someone else's save is refused the same way, but
    spotted before the forms are validated (see _stale_edit), and its inline
    rows are then shown as they are now.
    """

    form = WorkflowAdminForm
    inlines = [StepInline, TransitionInline]
    list_display = [
        "name",
        "tenant",
        "department",
        "category",
        "sub_category_shown",
        "status",
        "current_version_number",
        "updated_at",
    ]
    list_filter = ["status", "department", "tenant"]
    search_fields = ["name", "department", "category", "sub_category", "description"]
    list_select_related = ["tenant", "current_version"]
    readonly_fields = ["status", "current_version_link", "edit_version", "updated_at"]
    actions = ["publish_selected", "pause_selected", "retire_selected"]
    save_on_top = True

    # --- pages ---

    def get_queryset(self, request: HttpRequest) -> QuerySet[Workflow]:
        return super().get_queryset(request).filter(deleted_at__isnull=True)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Deleting is soft and refused while tasks exist (workflow_delete, via the API);
        # Django's delete page would try a hard delete of a row its versions protect.
        return False

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        main = ["name", "description", "completion_action", "loaded_edit_version"]
        fieldsets: list[tuple[str | None, dict[str, Any]]] = [
            (None, {"fields": main if obj is not None else ["tenant", *main]}),
            (
                "Matching tickets",
                {
                    "fields": ["department", "category", "sub_category"],
                    "description": "A ticket is routed here when its department, category and sub-category match "
                    "(ignoring case; a blank sub-category matches any sub-category).",
                },
            ),
            (
                "SLA per priority",
                {
                    "fields": [f"sla_{priority}" for priority in PRIORITIES],
                    "description": "Durations such as 4:00:00 or 2 00:00:00 (days hh:mm:ss); "
                    "urgent < high < medium < low.",
                },
            ),
        ]
        if obj is not None:
            fieldsets.append(("State", {"fields": ["status", "current_version_link", "edit_version", "updated_at"]}))
        return fieldsets

    def get_inline_instances(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        # A new workflow is created first; its graph is edited on its own page,
        # where roles and steps can be limited to its tenant.
        return [] if obj is None else super().get_inline_instances(request, obj)

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        initial = super().get_changeform_initial_data(request)
        initial.setdefault("tenant", str(default_tenant().pk))
        return initial

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form_class = super().get_form(request, obj, change, **kwargs)
        refusal = getattr(request, _REFUSAL_ATTR, None)
        if refusal is not None:
            form_class = type(form_class.__name__, (form_class,), {"service_refusal": refusal})
        return form_class

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Any = None,
    ) -> Any:
        if obj is not None and obj.pk is not None:
            context["designer"] = self._designer_context(request, obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _designer_context(self, request: HttpRequest, workflow: Workflow) -> dict[str, Any]:
        stored = Workflow.objects.select_related("current_version").get(pk=workflow.pk)
        draft = draft_from_db(stored)
        problems = workflow_problems(stored)
        versions = list(WorkflowVersion.objects.filter(workflow=stored).order_by("-number"))
        return {
            "workflow": stored,
            "problems": [_problem_row(problem, draft) for problem in problems],
            "svg": graph_svg(
                draft,
                highlight={problem.step for problem in problems if problem.step},
                label=f"Draft graph of {stored.name}",
            ),
            "versions": [
                {
                    "version": version,
                    "url": reverse("admin:workflow_workflowversion_change", args=[version.pk]),
                    "diff_url": (
                        f"{reverse('admin:workflow_workflow_diff', args=[stored.pk])}"
                        f"?a={version.number - 1}&b={version.number}"
                        if version.number > 1
                        else None
                    ),
                }
                for version in versions
            ],
            "compare_url": reverse("admin:workflow_workflow_diff", args=[stored.pk]) if len(versions) > 1 else None,
            "history_url": f"{reverse('admin:workflow_workflowversion_changelist')}?workflow__id__exact={stored.pk}",
            "publish_url": reverse("admin:workflow_workflow_publish", args=[stored.pk]),
            "pause_url": reverse("admin:workflow_workflow_pause", args=[stored.pk]),
            "retire_url": reverse("admin:workflow_workflow_retire", args=[stored.pk]),
            "can_change": self.has_change_permission(request, stored),
            "can_pause": stored.status == WorkflowStatus.PUBLISHED,
            "can_retire": stored.current_version_id is not None and stored.status != WorkflowStatus.RETIRED,
        }

    # --- saving (see the class docstring) ---

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> Any:
        if request.method != "POST":
            return super().changeform_view(request, object_id, form_url, extra_context)
        refusal: ApiError | None = self._stale_edit(request, object_id) if object_id is not None else None
        if refusal is None:
            try:
                with transaction.atomic():
                    return super().changeform_view(request, object_id, form_url, extra_context)
            except ApiError as refused:
                refusal = refused
        setattr(request, _REFUSAL_ATTR, refusal)
        return super().changeform_view(request, object_id, form_url, extra_context)

    def _stale_edit(self, request: HttpRequest, object_id: str) -> EditConflict | None:
        """The conflict a save from this page will meet, found before the forms are validated.

        The services check again, under the row lock; asking first matters
        because the other designer's save replaced the rows the inline forms
        point at (transitions are re-created), which would otherwise surface
        as puzzling "select a valid choice" errors instead of the conflict.
        """
        workflow = self.get_object(request, unquote(object_id))
        loaded = request.POST.get("loaded_edit_version", "")
        if workflow is None or not loaded.isdigit() or int(loaded) == workflow.edit_version:
            return None
        return EditConflict(workflow)

    def get_formset_kwargs(self, request: HttpRequest, obj: Any, inline: Any, prefix: str) -> dict[str, Any]:
        kwargs = super().get_formset_kwargs(request, obj, inline, prefix)
        if isinstance(getattr(request, _REFUSAL_ATTR, None), EditConflict):
            # Show the steps and transitions as they are now, not the stale rows that were posted.
            kwargs.pop("data", None)
            kwargs.pop("files", None)
        return kwargs

    def save_model(self, request: HttpRequest, obj: Workflow, form: Any, change: bool) -> None:
        if change:
            return  # save_related writes fields and graph together
        fields = {name: form.cleaned_data[name] for name in WORKFLOW_FIELDS if name in form.cleaned_data}
        created = workflow_create(tenant=form.cleaned_data["tenant"], actor=Actor.of(request.user), **fields)
        # Django goes on with the form's instance (logging, redirect): make it the created row.
        for model_field in Workflow._meta.concrete_fields:
            setattr(obj, model_field.attname, getattr(created, model_field.attname))
        obj._state.adding, obj._state.db = False, created._state.db

    def save_related(self, request: HttpRequest, form: Any, formsets: list[Any], change: bool) -> None:
        if not change:
            return  # a new workflow has no graph yet (no inlines on the add page)
        actor = Actor.of(request.user)
        expected = form.cleaned_data["loaded_edit_version"]
        workflow = form.instance
        fields = {name: form.cleaned_data[name] for name in WORKFLOW_FIELDS if name in form.changed_data}
        if fields:
            workflow = workflow_update(workflow=workflow, actor=actor, expected_edit_version=expected, **fields)
            expected = workflow.edit_version  # our own bump, made under the row lock we still hold
        if any(formset.has_changed() for formset in formsets):
            workflow_graph_replace(
                workflow=workflow, graph=graph_from_formsets(formsets), actor=actor, expected_edit_version=expected
            )

    def construct_change_message(self, request: HttpRequest, form: Any, formsets: Any, add: bool = False) -> Any:
        # The formsets are never saved by Django (the service replaces the graph), so
        # they carry no new/changed/deleted objects to describe.
        message = super().construct_change_message(request, form, [], add)
        if formsets and any(formset.has_changed() for formset in formsets):
            message.append({"changed": {"fields": ["steps and transitions"]}})
        return message

    def response_add(self, request: HttpRequest, obj: Workflow, post_url_continue: str | None = None) -> Any:
        if "_addanother" in request.POST or IS_POPUP_VAR in request.POST:
            return super().response_add(request, obj, post_url_continue)
        self.message_user(
            request,
            format_html("The workflow “{}” was added as a draft. Add its steps below, then the transitions.", obj),
            messages.SUCCESS,
        )
        return HttpResponseRedirect(reverse("admin:workflow_workflow_change", args=[obj.pk]))

    def response_change(self, request: HttpRequest, obj: Workflow) -> Any:
        response = super().response_change(request, obj)
        problems = workflow_problems(obj)
        if problems:
            self.message_user(
                request,
                f"“{obj.name}” is saved as a draft; {len(problems)} problem(s) block publishing (listed on its page).",
                messages.WARNING,
            )
        return response

    # --- lifecycle: buttons on the page and changelist actions ---

    def get_urls(self) -> list[URLPattern]:
        def view(func: Any) -> Any:
            return self.admin_site.admin_view(func)

        own = [
            path("<path:object_id>/publish/", view(self.publish_view), name="workflow_workflow_publish"),
            path("<path:object_id>/pause/", view(self.pause_view), name="workflow_workflow_pause"),
            path("<path:object_id>/retire/", view(self.retire_view), name="workflow_workflow_retire"),
            path("<path:object_id>/versions/diff/", view(self.diff_view), name="workflow_workflow_diff"),
        ]
        return own + super().get_urls()  # type: ignore[operator]

    def _workflow_to_change(self, request: HttpRequest, object_id: str) -> Workflow:
        workflow = self.get_object(request, unquote(object_id))
        if workflow is None:
            raise Http404("No such workflow.")
        if not self.has_change_permission(request, workflow):
            raise PermissionDenied
        return workflow

    def _back_to(self, workflow: Workflow) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:workflow_workflow_change", args=[workflow.pk]))

    @method_decorator(require_POST)
    def publish_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        workflow = self._workflow_to_change(request, object_id)
        self._publish(request, workflow)
        return self._back_to(workflow)

    @method_decorator(require_POST)
    def pause_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        workflow = self._workflow_to_change(request, object_id)
        self._pause(request, workflow)
        return self._back_to(workflow)

    @method_decorator(require_POST)
    def retire_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        workflow = self._workflow_to_change(request, object_id)
        self._retire(request, workflow)
        return self._back_to(workflow)

    @admin.action(description="Publish selected workflows", permissions=["change"])
    def publish_selected(self, request: HttpRequest, queryset: QuerySet[Workflow]) -> None:
        for workflow in queryset.order_by("name"):
            self._publish(request, workflow)

    @admin.action(description="Pause selected workflows (no new tickets)", permissions=["change"])
    def pause_selected(self, request: HttpRequest, queryset: QuerySet[Workflow]) -> None:
        for workflow in queryset.order_by("name"):
            self._pause(request, workflow)

    @admin.action(description="Retire selected workflows (running tasks finish)", permissions=["change"])
    def retire_selected(self, request: HttpRequest, queryset: QuerySet[Workflow]) -> None:
        for workflow in queryset.order_by("name"):
            self._retire(request, workflow)

    def _publish(self, request: HttpRequest, workflow: Workflow) -> None:
        was = workflow.status
        try:
            result = workflow_publish(workflow=workflow, actor=Actor.of(request.user))
        except WorkflowInvalid as refusal:
            self.message_user(request, _problem_list(refusal.message, refusal.problems), messages.ERROR)
            return
        except ApiError as refusal:
            self.message_user(request, refusal.message, messages.ERROR)
            return
        number = result.version.number
        if result.created:
            self.message_user(request, f"Published version {number} of “{workflow.name}”.", messages.SUCCESS)
        elif was != WorkflowStatus.PUBLISHED:
            self.message_user(
                request,
                f"Definition unchanged: version {number} is still current; “{workflow.name}” is published again.",
                messages.SUCCESS,
            )
        else:
            self.message_user(
                request, f"Definition unchanged: version {number} is still current (“{workflow.name}”).", messages.INFO
            )

    def _pause(self, request: HttpRequest, workflow: Workflow) -> None:
        try:
            workflow_pause(workflow=workflow, actor=Actor.of(request.user))
        except ApiError as refusal:
            self.message_user(request, refusal.message, messages.ERROR)
            return
        self.message_user(
            request,
            f"Paused “{workflow.name}”: no new tickets are matched to it; running tasks go on.",
            messages.SUCCESS,
        )

    def _retire(self, request: HttpRequest, workflow: Workflow) -> None:
        try:
            workflow_retire(workflow=workflow, actor=Actor.of(request.user))
        except ApiError as refusal:
            self.message_user(request, refusal.message, messages.ERROR)
            return
        self.message_user(
            request,
            f"Retired “{workflow.name}”: no new tickets; running tasks finish on their version.",
            messages.SUCCESS,
        )

    # --- comparing versions ---

    def diff_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        workflow = self.get_object(request, unquote(object_id))
        if workflow is None:
            raise Http404("No such workflow.")
        if not self.has_view_or_change_permission(request, workflow):
            raise PermissionDenied
        versions = list(WorkflowVersion.objects.filter(workflow=workflow).order_by("-number"))
        data = request.GET if {"a", "b"} <= set(request.GET) else None
        if data is None and len(versions) >= 2:
            data = {"a": str(versions[1].number), "b": str(versions[0].number)}  # type: ignore[assignment]
        form = VersionDiffForm(data, versions=versions)
        comparison = None
        if data is not None and form.is_valid():
            by_number = {version.number: version for version in versions}
            old, new = by_number[form.cleaned_data["a"]], by_number[form.cleaned_data["b"]]
            comparison = _comparison(old, new)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Compare versions of {workflow.name}",
            "subtitle": None,
            "opts": self.opts,
            "workflow": workflow,
            "form": form,
            "versions": versions,
            "comparison": comparison,
        }
        return TemplateResponse(request, "admin/workflow/workflow/version_diff.html", context)

    # --- changelist columns ---

    @admin.display(description="sub-category", ordering="sub_category")
    def sub_category_shown(self, obj: Workflow) -> str:
        return obj.sub_category or "(any)"

    @admin.display(description="version", ordering="current_version__number")
    def current_version_number(self, obj: Workflow) -> str:
        return str(obj.current_version.number) if obj.current_version else "—"

    @admin.display(description="current version")
    def current_version_link(self, obj: Workflow) -> SafeString | str:
        if obj.current_version is None:
            return "never published"
        url = reverse("admin:workflow_workflowversion_change", args=[obj.current_version.pk])
        return format_html('<a href="{}">version {}</a>', url, obj.current_version.number)


def graph_from_formsets(formsets: list[BaseFormSet]) -> Graph:
    """The graph the two inline formsets describe, in workflow_graph_replace's terms.

    Stored steps keep their pk as id (and their key); new rows get temporary
    ids. Empty extra rows and rows marked for deletion are left out.
    """
    graph = Graph()
    for formset in formsets:
        model = getattr(formset, "model", None)
        rows = [
            form
            for form in formset.forms
            if form not in formset.deleted_forms and (form.instance.pk is not None or form.has_changed())
        ]
        for index, form in enumerate(rows):
            data = form.cleaned_data
            ref = str(form.instance.pk) if form.instance.pk is not None else f"new-{index}"
            if model is Step:
                graph.nodes.append(
                    GraphNode(
                        id=ref,
                        name=data["name"],
                        role_id=None,
                        role_pk=data["role"].pk if data.get("role") else None,
                        escalation_role_pk=data["escalation_role"].pk if data.get("escalation_role") else None,
                        weight=data["weight"],
                        is_start=data["is_start"],
                        is_end=data["is_end"],
                        instruction=data.get("instruction") or "",
                        x=data.get("x") or 0,
                        y=data.get("y") or 0,
                        key=data.get("key") or None,
                        assignment_strategy=data["assignment_strategy"],
                        assignee_count=data["assignee_count"],
                    )
                )
            elif model is Transition:
                graph.edges.append(
                    GraphEdge(
                        id=ref,
                        from_id=str(data["from_step"].pk),
                        to_id=str(data["to_step"].pk),
                        name=data["name"],
                    )
                )
    return graph


def _problem_row(problem: Problem, draft: Draft) -> dict[str, str]:
    steps = {step.ref: step.name for step in draft.steps}
    transitions = {
        t.ref: f"{t.name} ({steps.get(t.from_ref, t.from_ref)} → {steps.get(t.to_ref, t.to_ref)})"
        for t in draft.transitions
    }
    return {
        "code": str(problem.code),
        "message": problem.message,
        "step": steps.get(problem.step, problem.step) if problem.step else "",
        "transition": transitions.get(problem.transition, problem.transition) if problem.transition else "",
    }


def _problem_list(headline: str, problems: list[Problem]) -> SafeString:
    items = format_html_join("", "<li><code>{}</code> {}</li>", ((str(p.code), p.message) for p in problems))
    return format_html("{}<ul>{}</ul>", headline, items)


# --- version history ---------------------------------------------------------------------


def _shown(field: str, value: Any) -> str:
    """A definition value as a designer reads it."""
    if value is None or value == "":
        return "—"
    if isinstance(value, dict) and "name" in value:
        return str(value["name"])
    if isinstance(value, dict) and "strategy" in value:
        return f"{value['strategy']}, {value.get('count', 1)} assignee(s)"
    if field.startswith("sla.") and isinstance(value, int):
        return str(timedelta(seconds=value))
    return str(value)


def _comparison(old: WorkflowVersion, new: WorkflowVersion) -> dict[str, Any]:
    diff = version_diff(old=old.definition, new=new.definition)
    names = {step["key"]: step["name"] for step in old.definition["steps"]}
    names.update({step["key"]: step["name"] for step in new.definition["steps"]})
    return {
        "old": old,
        "new": new,
        "unchanged": not (
            diff.steps_added
            or diff.steps_removed
            or diff.steps_changed
            or diff.transitions_added
            or diff.transitions_removed
            or diff.other_changed
        ),
        "steps_added": [f"{names[key]} ({key})" for key in diff.steps_added],
        "steps_removed": [f"{names[key]} ({key})" for key in diff.steps_removed],
        "steps_changed": [
            {
                "step": f"{names[key]} ({key})",
                "fields": [
                    (field, _shown(field, values[0]), _shown(field, values[1])) for field, values in fields.items()
                ],
            }
            for key, fields in diff.steps_changed.items()
        ],
        "transitions_added": diff.transitions_added,
        "transitions_removed": diff.transitions_removed,
        "other_changed": [
            (field, _shown(field, values[0]), _shown(field, values[1])) for field, values in diff.other_changed.items()
        ],
        "old_svg": graph_svg(old.definition, label=f"Version {old.number}"),
        "new_svg": graph_svg(new.definition, label=f"Version {new.number}"),
    }


@admin.register(WorkflowVersion)
class WorkflowVersionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Published versions: immutable, so look only; compare them and migrate running tasks onto one."""

    list_display = ["workflow", "number", "is_current", "published_at", "published_by_name", "short_hash"]
    list_filter = [("workflow", admin.RelatedOnlyFieldListFilter), "tenant"]
    search_fields = ["workflow__name", "=number", "published_by_name"]
    list_select_related = ["workflow", "tenant"]
    ordering = ["workflow__name", "-number"]
    actions = ["plan_migration"]
    fields = readonly_fields = (
        "workflow_link",
        "number",
        "is_current",
        "published",
        "content_hash",
        "graph",
        "tools",
        "definition_shown",
    )

    @admin.display(description="workflow")
    def workflow_link(self, obj: WorkflowVersion) -> SafeString:
        return format_html(
            '<a href="{}">{}</a>', reverse("admin:workflow_workflow_change", args=[obj.workflow_id]), obj.workflow
        )

    @admin.display(description="current", boolean=True)
    def is_current(self, obj: WorkflowVersion) -> bool:
        return obj.workflow.current_version_id == obj.pk

    @admin.display(description="published")
    def published(self, obj: WorkflowVersion) -> str:
        by = obj.published_by_name + (f" (#{obj.published_by_id})" if obj.published_by_id is not None else "")
        return f"{obj.published_at:%Y-%m-%d %H:%M %Z} by {by}"

    @admin.display(description="hash")
    def short_hash(self, obj: WorkflowVersion) -> str:
        return obj.content_hash[:12]

    @admin.display(description="graph")
    def graph(self, obj: WorkflowVersion) -> SafeString:
        return graph_svg(obj.definition, label=f"{obj.workflow} version {obj.number}")

    @admin.display(description="compare and migrate")
    def tools(self, obj: WorkflowVersion) -> SafeString:
        diff = reverse("admin:workflow_workflow_diff", args=[obj.workflow_id])
        links = [
            format_html('<a href="{}?a={}&amp;b={}">Compare with version {}</a>', diff, n, obj.number, n)
            for n in (obj.number - 1,)
            if n >= 1
        ]
        links.append(format_html('<a href="{}">Compare any two versions</a>', diff))
        links.append(
            format_html(
                '<a href="{}">Migrate running tasks to this version…</a>',
                reverse("admin:workflow_workflowversion_migrate", args=[obj.pk]),
            )
        )
        return format_html_join(" · ", "{}", ((link,) for link in links))

    @admin.display(description="definition")
    def definition_shown(self, obj: WorkflowVersion) -> SafeString:
        steps = format_html_join(
            "",
            "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    step["name"],
                    step["key"],
                    _shown("role", step.get("role")),
                    _shown("escalation_role", step.get("escalation_role")),
                    step.get("weight", ""),
                    " ".join(flag for flag, on in (("start", step.get("is_start")), ("end", step.get("is_end"))) if on),
                )
                for step in obj.definition["steps"]
            ),
        )
        transitions = format_html_join(
            "",
            "<li><code>{}</code> —{}→ <code>{}</code></li>",
            ((t["from"], t["name"], t["to"]) for t in obj.definition["transitions"]),
        )
        sla = format_html_join(", ", "{} {}", ((p, timedelta(seconds=obj.definition["sla"][p])) for p in PRIORITIES))
        return format_html(
            "<table><tr><th>step</th><th>key</th><th>role</th><th>escalation</th><th>weight</th><th></th></tr>{}"
            "</table><p>Transitions:</p><ul>{}</ul><p>SLA: {}</p>",
            steps,
            transitions,
            sla,
        )

    @admin.action(description="Plan a migration of running tasks to this version")
    def plan_migration(self, request: HttpRequest, queryset: QuerySet[WorkflowVersion]) -> HttpResponse | None:
        chosen = list(queryset[:2])
        if len(chosen) != 1:
            self.message_user(request, "Choose exactly one version to migrate running tasks to.", messages.WARNING)
            return None
        return HttpResponseRedirect(reverse("admin:workflow_workflowversion_migrate", args=[chosen[0].pk]))

    def get_urls(self) -> list[URLPattern]:
        own = [
            path(
                "<path:object_id>/migrate/",
                self.admin_site.admin_view(self.migrate_view),
                name="workflow_workflowversion_migrate",
            )
        ]
        return own + super().get_urls()  # type: ignore[operator]

    def migrate_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """GET: the dry-run plan. POST: apply it (moves every mappable task, audited)."""
        version = get_object_or_404(WorkflowVersion.objects.select_related("workflow"), pk=unquote(object_id))
        if not self.has_view_permission(request, version):
            raise PermissionDenied
        workflow = version.workflow
        may_apply = request.user.has_perm("workflow.change_workflow")
        actor = Actor.of(request.user)
        here = reverse("admin:workflow_workflowversion_migrate", args=[version.pk])
        if request.method == "POST":
            if not may_apply:
                raise PermissionDenied
            applied = workflow_migrate(workflow=workflow, version_number=version.number, dry_run=False, actor=actor)
            self.message_user(
                request, f"Moved {len(applied.moves)} task(s) to version {version.number}.", messages.SUCCESS
            )
            if applied.blockers:
                self.message_user(
                    request,
                    f"{len(applied.blockers)} task(s) could not be moved and stay on their version.",
                    messages.WARNING,
                )
            return HttpResponseRedirect(here)
        plan = workflow_migrate(workflow=workflow, version_number=version.number, dry_run=True, actor=actor)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Migrate running tasks of {workflow.name} to version {version.number}",
            "subtitle": None,
            "opts": self.opts,
            "version": version,
            "workflow": workflow,
            "plan": plan,
            "may_apply": may_apply,
        }
        return TemplateResponse(request, "admin/workflow/workflowversion/migrate.html", context)
