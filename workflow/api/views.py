"""The workflow designer's endpoints (api.md "Workflows").

Reads are open to any authenticated caller, writes need tts:Admin. Every
workflow is looked up through `selectors.workflow_list` with the caller's
tenant, so another tenant's workflow, or a deleted one, is a 404. Views parse
with a serializer, call one service or selector, and render; the services
raise the domain errors (workflow_invalid, edit_conflict, workflow_in_use,
invalid_state) in the API's error shape.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, cast

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.filters import OrderingFilter
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from audit.services import Actor
from workflow import selectors, services, transfer
from workflow.api.filters import WorkflowFilter
from workflow.api.serializers import (
    GraphInputSerializer,
    GraphSerializer,
    ImportQuerySerializer,
    MigrateInputSerializer,
    MigrationPlanSerializer,
    PublishResultSerializer,
    StatisticsSerializer,
    ValidationResultSerializer,
    VersionDiffQuerySerializer,
    VersionDiffSerializer,
    WeightsInputSerializer,
    WeightsSerializer,
    WorkflowCreateSerializer,
    WorkflowSerializer,
    WorkflowUpdateSerializer,
    WorkflowVersionDetailSerializer,
    WorkflowVersionSerializer,
)
from workflow.models import Workflow, WorkflowVersion
from workflow_api.core.auth import IsEngineAdmin, TokenUser, is_engine_admin


class ReadAnyWriteAdmin(BasePermission):
    """Reading for every authenticated caller; changing needs tts:Admin."""

    message = IsEngineAdmin.message

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.method in SAFE_METHODS:
            return bool(request.user and request.user.is_authenticated)
        return is_engine_admin(request.user)


def _caller(request: Request) -> TokenUser:
    return cast(TokenUser, request.user)


def _actor(request: Request) -> Actor:
    return Actor.of(request.user)


def _fresh(request: Request, workflow: Workflow) -> Workflow:
    """The workflow as stored now (services return the row they locked, without its relations)."""
    return selectors.workflow_list(tenant=_caller(request).tenant).get(pk=workflow.pk)


# Views over the caller's tenant's live workflows; one of them is found by `pk`.
# (Comments, not docstrings: the schema takes a view's docstring as its description.)
class _Workflows(generics.GenericAPIView):
    permission_classes = [ReadAnyWriteAdmin]

    def tenant_workflows(self) -> QuerySet[Workflow]:
        if getattr(self, "swagger_fake_view", False):  # schema generation has no caller
            return Workflow.objects.none()
        return selectors.workflow_list(tenant=_caller(self.request).tenant)

    def get_queryset(self) -> QuerySet[Any]:
        return self.tenant_workflows()

    def workflow(self) -> Workflow:
        return get_object_or_404(self.tenant_workflows(), pk=self.kwargs["pk"])

    def version(self, workflow: Workflow, number: int) -> WorkflowVersion:
        return get_object_or_404(WorkflowVersion.objects.filter(workflow=workflow), number=number)


# Not a list: no filters, no pages.
class _OneWorkflow(_Workflows):
    filter_backends: list[Any] = []
    pagination_class = None


# --- workflows -----------------------------------------------------------------------------


class WorkflowListView(_Workflows, generics.ListAPIView):
    """The tenant's workflows (filters: status, department, category, search on the name); create a draft."""

    serializer_class = WorkflowSerializer
    filterset_class = WorkflowFilter
    ordering_fields = ["name", "id", "department", "category", "status", "created_at", "updated_at"]
    ordering = ["name"]

    @extend_schema(request=WorkflowCreateSerializer, responses={201: WorkflowSerializer})
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = WorkflowCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        workflow = services.workflow_create(
            tenant=_caller(request).tenant, actor=_actor(request), **serializer.workflow_fields()
        )
        return Response(WorkflowSerializer(workflow).data, status=status.HTTP_201_CREATED)


class WorkflowDetailView(_OneWorkflow):
    """One workflow. PATCH edits the draft (send `edit_version` to refuse stale edits); DELETE needs no tasks."""

    serializer_class = WorkflowSerializer
    http_method_names = ["get", "patch", "delete", "head", "options"]

    @extend_schema(responses=WorkflowSerializer)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return Response(WorkflowSerializer(self.workflow()).data)

    @extend_schema(request=WorkflowUpdateSerializer, responses=WorkflowSerializer)
    def patch(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        workflow = self.workflow()
        serializer = WorkflowUpdateSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        workflow = services.workflow_update(
            workflow=workflow,
            actor=_actor(request),
            expected_edit_version=serializer.validated_data.get("edit_version"),
            **serializer.workflow_fields(),
        )
        return Response(WorkflowSerializer(_fresh(request, workflow)).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        services.workflow_delete(workflow=self.workflow(), actor=_actor(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- the draft graph ---------------------------------------------------------------------------


class WorkflowGraphView(_OneWorkflow):
    """The draft graph. PUT replaces it; new nodes and edges may carry any string id that edges refer to."""

    serializer_class = GraphSerializer

    @extend_schema(responses=GraphSerializer)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return Response(GraphSerializer(selectors.workflow_graph(workflow=self.workflow())).data)

    @extend_schema(
        request=GraphInputSerializer,
        responses={
            200: GraphSerializer,
            400: OpenApiResponse(description="Malformed payload (field errors) or `workflow_invalid` (problems)."),
            409: OpenApiResponse(description="`edit_conflict`: the graph changed since `edit_version`."),
        },
    )
    def put(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        workflow = self.workflow()
        serializer = GraphInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        workflow = services.workflow_graph_replace(
            workflow=workflow,
            graph=serializer.to_graph(),
            actor=_actor(request),
            expected_edit_version=serializer.validated_data.get("edit_version"),
        )
        return Response(GraphSerializer(selectors.workflow_graph(workflow=workflow)).data)


class WorkflowValidateView(_OneWorkflow):
    """Every problem that stops the draft from being published."""

    serializer_class = ValidationResultSerializer

    @extend_schema(responses=ValidationResultSerializer)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        problems = services.workflow_problems(self.workflow())
        return Response({"valid": not problems, "errors": [problem.as_dict() for problem in problems]})


class WorkflowWeightsView(_OneWorkflow):
    """Step weights: each step's share of a ticket's SLA."""

    serializer_class = WeightsSerializer

    def _render(self, workflow: Workflow) -> Response:
        graph = selectors.workflow_graph(workflow=workflow)
        steps = [
            {"step_id": node["id"], "key": node["key"], "name": node["name"], "weight": node["weight"]}
            for node in graph["nodes"]
        ]
        return Response(WeightsSerializer({"steps": steps, "edit_version": graph["edit_version"]}).data)

    @extend_schema(responses=WeightsSerializer)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self._render(self.workflow())

    @extend_schema(request=WeightsInputSerializer, responses=WeightsSerializer)
    def put(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        workflow = self.workflow()
        serializer = WeightsInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        workflow = services.workflow_weights_set(
            workflow=workflow,
            weights=serializer.to_weights(),
            actor=_actor(request),
            expected_edit_version=serializer.validated_data.get("edit_version"),
        )
        return self._render(workflow)


class WorkflowStatisticsView(_OneWorkflow):
    """Task counts by status and by current step."""

    serializer_class = StatisticsSerializer

    @extend_schema(responses=StatisticsSerializer)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return Response(StatisticsSerializer(selectors.workflow_statistics(workflow=self.workflow())).data)


# --- publishing and lifecycle ----------------------------------------------------------------------


class WorkflowPublishView(_OneWorkflow):
    """Validate the draft and freeze it as a new version (only if its definition changed); make it current."""

    serializer_class = PublishResultSerializer

    @extend_schema(
        request=None,
        responses={
            201: PublishResultSerializer,
            200: OpenApiResponse(PublishResultSerializer, description="Unchanged definition: the current version."),
            400: OpenApiResponse(description="`workflow_invalid`: every problem, in `errors.problems`."),
        },
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        result = services.workflow_publish(workflow=self.workflow(), actor=_actor(request))
        body = {**WorkflowVersionDetailSerializer(result.version).data, "created": result.created}
        return Response(body, status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)


class WorkflowPauseView(_OneWorkflow):
    """No new tickets are matched to it; running tasks go on. Publishing resumes it."""

    serializer_class = WorkflowSerializer

    @extend_schema(request=None, responses=WorkflowSerializer)
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        workflow = services.workflow_pause(workflow=self.workflow(), actor=_actor(request))
        return Response(WorkflowSerializer(_fresh(request, workflow)).data)


class WorkflowRetireView(_OneWorkflow):
    """No new tickets; running tasks finish on their version."""

    serializer_class = WorkflowSerializer

    @extend_schema(request=None, responses=WorkflowSerializer)
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        workflow = services.workflow_retire(workflow=self.workflow(), actor=_actor(request))
        return Response(WorkflowSerializer(_fresh(request, workflow)).data)


# --- versions -----------------------------------------------------------------------------------------


class WorkflowVersionListView(_Workflows, generics.ListAPIView):
    """The published versions, newest first."""

    serializer_class = WorkflowVersionSerializer
    filter_backends = [OrderingFilter]
    ordering_fields = ["number", "published_at"]
    ordering = ["-number"]

    def get_queryset(self) -> QuerySet[WorkflowVersion]:
        if getattr(self, "swagger_fake_view", False):
            return WorkflowVersion.objects.none()
        return WorkflowVersion.objects.filter(workflow=self.workflow())


class WorkflowVersionDetailView(_OneWorkflow):
    """One version with its immutable definition."""

    serializer_class = WorkflowVersionDetailSerializer

    @extend_schema(responses=WorkflowVersionDetailSerializer)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return Response(WorkflowVersionDetailSerializer(self.version(self.workflow(), kwargs["number"])).data)


class WorkflowVersionDiffView(_OneWorkflow):
    """What changed from version `against` to this one: steps by key, transitions, SLA and other fields."""

    serializer_class = VersionDiffSerializer

    @extend_schema(parameters=[VersionDiffQuerySerializer], responses=VersionDiffSerializer)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        query = VersionDiffQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        workflow = self.workflow()
        new, old = self.version(workflow, kwargs["number"]), self.version(workflow, query.validated_data["against"])
        diff = selectors.version_diff(old=old.definition, new=new.definition)
        return Response(VersionDiffSerializer({"against": old.number, "number": new.number, **asdict(diff)}).data)


class WorkflowMigrateView(_OneWorkflow):
    """Move running tasks of older versions onto this version by step key; `dry_run` only plans."""

    serializer_class = MigrationPlanSerializer

    @extend_schema(request=MigrateInputSerializer, responses=MigrationPlanSerializer)
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        workflow = self.workflow()
        serializer = MigrateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        plan = services.workflow_migrate(
            workflow=workflow,
            version_number=kwargs["number"],
            dry_run=serializer.validated_data["dry_run"],
            actor=_actor(request),
        )
        return Response(MigrationPlanSerializer(asdict(plan)).data)


# --- import / export ----------------------------------------------------------------------------------------


class WorkflowExportView(_OneWorkflow):
    """The draft as a portable JSON document (format `workflow_api.workflow/1`)."""

    @extend_schema(responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="A workflow document.")})
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return Response(transfer.workflow_export(workflow=self.workflow()))


class WorkflowImportView(_OneWorkflow):
    """Create a workflow from a document, or replace the draft of the tenant's workflow of that name."""

    serializer_class = WorkflowSerializer

    @extend_schema(
        parameters=[ImportQuerySerializer],
        request=OpenApiTypes.OBJECT,
        responses={
            201: WorkflowSerializer,
            200: OpenApiResponse(WorkflowSerializer, description="An existing workflow's draft was replaced."),
            400: OpenApiResponse(description="A malformed document (field errors) or `workflow_invalid`."),
        },
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        query = ImportQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        tenant = _caller(request).tenant
        # Only decides 201 or 200: the import itself is what creates or replaces.
        replaces = self.tenant_workflows().filter(name=_document_name(request.data)).exists()
        workflow, _ = transfer.workflow_import(
            tenant=tenant, document=request.data, actor=_actor(request), publish=query.validated_data["publish"]
        )
        return Response(
            WorkflowSerializer(_fresh(request, workflow)).data,
            status=status.HTTP_200_OK if replaces else status.HTTP_201_CREATED,
        )


def _document_name(document: Any) -> str:
    head = document.get("workflow") if isinstance(document, dict) else None
    name = head.get("name") if isinstance(head, dict) else None
    return name if isinstance(name, str) else ""
