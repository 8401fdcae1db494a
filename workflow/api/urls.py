from django.urls import path

from workflow.api import views

urlpatterns = [
    path("", views.WorkflowListView.as_view(), name="workflow-list"),
    path("import/", views.WorkflowImportView.as_view(), name="workflow-import"),
    path("<int:pk>/", views.WorkflowDetailView.as_view(), name="workflow-detail"),
    path("<int:pk>/graph/", views.WorkflowGraphView.as_view(), name="workflow-graph"),
    path("<int:pk>/validate/", views.WorkflowValidateView.as_view(), name="workflow-validate"),
    path("<int:pk>/publish/", views.WorkflowPublishView.as_view(), name="workflow-publish"),
    path("<int:pk>/pause/", views.WorkflowPauseView.as_view(), name="workflow-pause"),
    path("<int:pk>/retire/", views.WorkflowRetireView.as_view(), name="workflow-retire"),
    path("<int:pk>/weights/", views.WorkflowWeightsView.as_view(), name="workflow-weights"),
    path("<int:pk>/statistics/", views.WorkflowStatisticsView.as_view(), name="workflow-statistics"),
    path("<int:pk>/export/", views.WorkflowExportView.as_view(), name="workflow-export"),
    path("<int:pk>/versions/", views.WorkflowVersionListView.as_view(), name="workflow-version-list"),
    path("<int:pk>/versions/<int:number>/", views.WorkflowVersionDetailView.as_view(), name="workflow-version-detail"),
    path("<int:pk>/versions/<int:number>/diff/", views.WorkflowVersionDiffView.as_view(), name="workflow-version-diff"),
    path(
        "<int:pk>/versions/<int:number>/migrate/",
        views.WorkflowMigrateView.as_view(),
        name="workflow-version-migrate",
    ),
]
