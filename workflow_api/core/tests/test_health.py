"""Liveness and readiness probes."""

from __future__ import annotations

import time

import pytest
from django.db.migrations.executor import MigrationExecutor
from django.test import Client, override_settings


def test_live_answers_while_the_process_serves(db):
    response = Client().get("/health/live/")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_health_needs_no_token(db):
    assert Client().get("/health/ready/").status_code != 401


@pytest.mark.broker
def test_ready_checks_the_database_the_migrations_and_the_broker(db, broker_url):
    with override_settings(CELERY_BROKER_URL=broker_url, CELERY_IN_PROCESS=False):
        response = Client().get("/health/ready/")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "migrations": "ok", "broker": "ok"},
        "failing": [],
    }
    assert response["Cache-Control"] == "no-store"


def test_ready_is_503_naming_the_broker_when_it_is_unreachable(db, closed_broker_url):
    started = time.monotonic()
    with override_settings(CELERY_BROKER_URL=closed_broker_url, CELERY_IN_PROCESS=False):
        response = Client().get("/health/ready/")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["failing"] == ["broker"]
    assert body["checks"]["broker"].startswith("broker unreachable")
    assert body["checks"]["database"] == "ok"
    # A probe must answer before the orchestrator's timeout, not after Celery's retries.
    assert time.monotonic() - started < 5


def test_ready_does_not_need_a_broker_when_tasks_run_in_process(db):
    with override_settings(CELERY_BROKER_URL="", CELERY_IN_PROCESS=True):
        response = Client().get("/health/ready/")

    assert response.status_code == 200
    assert response.json()["checks"]["broker"].startswith("not configured")


def test_ready_is_503_while_a_migration_is_not_applied(db, monkeypatch):
    real_plan = MigrationExecutor.migration_plan

    def one_missing(self, targets, clean_start=False):
        plan = real_plan(self, targets, clean_start=clean_start)
        return plan or [(self.loader.graph.nodes[("core", "0001_initial")], False)]

    monkeypatch.setattr(MigrationExecutor, "migration_plan", one_missing)
    with override_settings(CELERY_BROKER_URL="", CELERY_IN_PROCESS=True):
        response = Client().get("/health/ready/")

    assert response.status_code == 503
    assert response.json()["failing"] == ["migrations"]
    assert response.json()["checks"]["migrations"] == "1 migration(s) not applied"
