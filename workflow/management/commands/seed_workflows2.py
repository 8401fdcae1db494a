"""`manage.py seed_workflows2`: the standard workflows of a tenant (workflow/seed.py).

The name is kept from the system this engine replaces: the auth service
triggers the same seeding with the `workflow.seed_workflows` message.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.services import Actor
from workflow.seed import seed_standard_workflows
from workflow_api.core.tenancy import UnknownTenant, tenant_from_slug


class Command(BaseCommand):
    help = (
        "Create the standard roles and published workflows of a tenant if they are missing. "
        "Safe to run again: what exists is left alone."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", metavar="SLUG", help="The tenant's slug (default: the default tenant).")
        parser.add_argument("--demo", action="store_true", help="Also add demo members to roles that have none.")
        parser.add_argument("--dry-run", action="store_true", help="Print what would be done; write nothing.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            tenant = tenant_from_slug(options["tenant"])
        except UnknownTenant as exc:
            raise CommandError(str(exc)) from exc
        seed_standard_workflows(
            tenant=tenant,
            actor=Actor.system(),
            demo=options["demo"],
            dry_run=options["dry_run"],
            out=self.stdout.write,
        )
