from django.apps import AppConfig


class FieldserviceConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "fieldservice"
