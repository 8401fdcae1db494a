from django.apps import AppConfig


class StepConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "step"
