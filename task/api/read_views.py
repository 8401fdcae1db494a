"""Task reads (api.md "Tasks"): lists, mine, owned, detail, history.

Thin: every query is a task.selectors function with the caller's tenant and
identity, so another tenant's task, or one the caller may not see, is a 404.
A list page costs a constant number of queries: the count (on the lean rows,
task.api.pagination), the page, and the step names of the page's workflow
versions.
"""

from __future__ import annotations

from typing import Any, cast

from django.db.models import QuerySet
from django.http import Http404
from rest_framework import generics

from audit.api.serializers import AuditEventSerializer
from audit.models import AuditEvent
from task import selectors
from task.api.filters import TaskFilter
from task.api.pagination import TaskPagination
from task.api.serializers import TaskDetailSerializer, TaskSerializer
from task.models import Task
from workflow_api.core.auth import TokenUser

ORDERING_FIELDS = ["id", "created_at", "updated_at", "target_resolution", "status", "priority"]


def _caller(view: generics.GenericAPIView) -> TokenUser:
    return cast(TokenUser, view.request.user)


class _TaskList(generics.ListAPIView):
    serializer_class = TaskSerializer
    pagination_class = TaskPagination  # adds the row columns to the page, not to the count
    ordering_fields = ORDERING_FIELDS
    ordering = ["-id"]

    def select(self, *, user: TokenUser) -> QuerySet[Task]:
        raise NotImplementedError

    def get_queryset(self) -> QuerySet[Task]:
        if getattr(self, "swagger_fake_view", False):  # schema generation has no caller
            return Task.objects.none()
        return self.select(user=_caller(self))

    def get_serializer(self, *args: Any, **kwargs: Any) -> Any:
        # One query for the current steps of the whole page, not one per row.
        if args and kwargs.get("many"):
            tasks = list(args[0])
            args = (tasks, *args[1:])
            kwargs.setdefault("context", self.get_serializer_context())["steps"] = selectors.task_steps(tasks)
        return super().get_serializer(*args, **kwargs)


class TaskListView(_TaskList):
    """Tasks the caller may see (admins: all of the tenant's); filters status, workflow, ticket_number,
    assignee, role, overdue=true, search."""

    filterset_class = TaskFilter

    def select(self, *, user: TokenUser) -> QuerySet[Task]:
        return selectors.task_list_for_user(tenant=user.tenant, user=user)


class TaskMineView(_TaskList):
    """Tasks where the caller holds an active (new, in_progress, on_hold) item."""

    def select(self, *, user: TokenUser) -> QuerySet[Task]:
        return selectors.task_list_mine(tenant=user.tenant, user=user)


class TaskOwnedView(_TaskList):
    """Tasks whose ticket owner is the caller."""

    def select(self, *, user: TokenUser) -> QuerySet[Task]:
        return selectors.task_list_owned(tenant=user.tenant, user=user)


def _visible_task(view: generics.GenericAPIView) -> Task:
    user = _caller(view)
    task = selectors.task_get(tenant=user.tenant, user=user, task_id=view.kwargs["pk"])
    if task is None:
        raise Http404
    return task


class TaskDetailView(generics.RetrieveAPIView):
    """One task with its items (and their status history) and the transitions the caller can take now."""

    serializer_class = TaskDetailSerializer
    queryset = Task.objects.none()  # lookups go through task.selectors.task_get
    filter_backends: list[Any] = []

    def get_object(self) -> Task:
        return _visible_task(self)

    def get_serializer_context(self) -> dict[str, Any]:
        context = dict(super().get_serializer_context())
        if not getattr(self, "swagger_fake_view", False):
            context["user_id"] = _caller(self).user_id
        return context


class TaskHistoryView(generics.ListAPIView):
    """The task's audit timeline, oldest first."""

    serializer_class = AuditEventSerializer
    filter_backends: list[Any] = []

    def get_queryset(self) -> QuerySet[AuditEvent]:
        if getattr(self, "swagger_fake_view", False):
            return AuditEvent.objects.none()
        return selectors.task_history(tenant=_caller(self).tenant, task=_visible_task(self))
