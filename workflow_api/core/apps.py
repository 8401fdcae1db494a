from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "workflow_api.core"
    label = "core"
    verbose_name = "Engine infrastructure"
