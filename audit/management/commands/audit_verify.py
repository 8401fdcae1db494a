from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.selectors import audit_chain_verify
from workflow_api.core.models import Tenant


class Command(BaseCommand):
    help = (
        "Walk the audit hash chain of every tenant (or one) and name the first row that was altered "
        "or follows a removed row. Exits non-zero when the chain is broken."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", metavar="SLUG", help="Verify only this tenant's chain.")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = None
        if options["tenant"] is not None:
            tenant = Tenant.objects.filter(slug=options["tenant"]).first()
            if tenant is None:
                raise CommandError(f"Unknown tenant {options['tenant']!r}.")

        result = audit_chain_verify(tenant=tenant)
        if result.ok:
            self.stdout.write(f"OK: {result.verified} events verified")
            return
        for problem in result.breaks:
            self.stderr.write(f"BROKEN: {problem}")
        raise CommandError(
            f"Audit chain broken at {len(result.breaks)} tenant(s); first broken row: {result.first_break}. "
            f"{result.verified} events verified before the breaks."
        )
