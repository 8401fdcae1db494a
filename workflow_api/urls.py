from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from workflow_api.core import health

api_v1: list[URLPattern | URLResolver] = [
    path("", include("workflow_api.core.api.urls")),
    path("roles/", include("role.api.urls")),
    path("audit/", include("audit.api.urls")),
    path("workflows/", include("workflow.api.urls")),
    path("tickets/", include("tickets.api.urls")),
    path("tasks/", include("task.api.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("health/live/", health.live, name="health-live"),
    path("health/ready/", health.ready, name="health-ready"),
    path("api/v1/", include(api_v1)),
]

handler404 = "workflow_api.core.errors.json_not_found"
handler500 = "workflow_api.core.errors.json_server_error"
