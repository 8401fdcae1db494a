from django.apps import AppConfig


class TestingConfig(AppConfig):
    name = "workflow_api.testing"
    label = "testing"
