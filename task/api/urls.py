"""Task API routes: reads (read_urls) and actions (action_urls)."""

from task.api.action_urls import urlpatterns as action_urlpatterns
from task.api.read_urls import urlpatterns as read_urlpatterns

urlpatterns = [*read_urlpatterns, *action_urlpatterns]
