"""`manage.py workflow_import`: create or update a workflow from a JSON document (workflow/transfer.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.services import Actor
from workflow.services import WorkflowInvalid
from workflow.transfer import workflow_import
from workflow_api.core.errors import ApiError
from workflow_api.core.tenancy import UnknownTenant, tenant_from_slug


def _field_errors(errors: dict[str, Any] | None) -> str:
    if not errors:
        return ""
    lines = []
    for where, messages in errors.items():
        for message in messages if isinstance(messages, list) else [messages]:
            lines.append(f"  {where}: {message}")
    return "\n" + "\n".join(lines)


class Command(BaseCommand):
    help = (
        "Import a workflow document (as written by workflow_export): creates the workflow, or replaces "
        "the draft of the tenant's workflow with that name. Nothing is written if anything is wrong."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="The JSON document, or - for standard input.")
        parser.add_argument("--tenant", metavar="SLUG", help="The tenant's slug (default: the default tenant).")
        parser.add_argument("--publish", action="store_true", help="Also publish the imported draft.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            tenant = tenant_from_slug(options["tenant"])
        except UnknownTenant as exc:
            raise CommandError(str(exc)) from exc
        source: str = options["file"]
        try:
            text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"Cannot read {source}: {getattr(exc, 'strerror', None) or exc}") from exc
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CommandError(f"{source} is not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}.") from exc
        try:
            workflow, result = workflow_import(
                tenant=tenant, document=document, actor=Actor.system(), publish=options["publish"]
            )
        except WorkflowInvalid as exc:
            problems = "".join(f"\n  {problem.code}: {problem.message}" for problem in exc.problems)
            raise CommandError(f"{exc.message}{problems}") from exc
        except ApiError as exc:
            raise CommandError(
                f"{source} is not a valid workflow document: {exc.message}{_field_errors(exc.errors)}"
            ) from exc
        self.stdout.write(f"Imported {workflow.name!r} (id {workflow.pk}) into tenant {tenant.slug!r}.")
        if result is not None:
            state = "published as" if result.created else "unchanged, still"
            self.stdout.write(f"  {state} version {result.version.number}")
