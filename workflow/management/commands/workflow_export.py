"""`manage.py workflow_export`: a workflow's draft as a JSON document (workflow/transfer.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from workflow.models import Workflow
from workflow.selectors import workflow_list
from workflow.transfer import workflow_export
from workflow_api.core.tenancy import UnknownTenant, tenant_from_slug


class Command(BaseCommand):
    help = "Write a workflow (by name or id) as JSON, to keep it in version control or import it elsewhere."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("workflow", help="The workflow's name or id.")
        parser.add_argument("--tenant", metavar="SLUG", help="The tenant's slug (default: the default tenant).")
        parser.add_argument("--output", "-o", metavar="FILE", help="Write to FILE instead of standard output.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            tenant = tenant_from_slug(options["tenant"])
        except UnknownTenant as exc:
            raise CommandError(str(exc)) from exc
        wanted: str = options["workflow"]
        workflows = workflow_list(tenant=tenant)
        workflow: Workflow | None = workflows.filter(name=wanted).first()
        if workflow is None and wanted.isdigit():
            workflow = workflows.filter(pk=int(wanted)).first()
        if workflow is None:
            raise CommandError(f"No workflow named {wanted!r} (or with that id) in tenant {tenant.slug!r}.")
        text = json.dumps(workflow_export(workflow=workflow), indent=2, ensure_ascii=False) + "\n"
        if options["output"]:
            try:
                Path(options["output"]).write_text(text, encoding="utf-8")
            except OSError as exc:
                raise CommandError(f"Cannot write {options['output']}: {exc.strerror or exc}") from exc
            self.stderr.write(f"Wrote {workflow.name!r} to {options['output']}")
        else:
            self.stdout.write(text, ending="")
