"""Demo data for `make run`: the default tenant, an `admin` superuser, four roles and their members,
and the standard workflows (workflow/seed.py).

Roles and members go through role.services exactly as the auth service's
messages would (so the audit trail shows them), which also makes the command
idempotent: a second run finds everything in place and changes nothing.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from audit.services import Actor
from role.selectors import role_list
from role.services import SyncOutcome, role_member_sync, role_sync
from workflow.seed import seed_standard_workflows
from workflow_api.core.inbound import InvalidMessage
from workflow_api.core.tenancy import default_tenant

ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "admin"  # a local demo login, printed for the person running `make run`
CREATED_AT = "2026-01-05T09:00:00+00:00"
ASSIGNED_AT = "2026-01-06T09:00:00+00:00"

ROLES = [
    (1, "Admin", "Administers workflows, tasks and users of the engine"),
    (2, "Asset Manager", "Approves asset check-in and check-out requests"),
    (3, "Budget Manager", "Approves budget and purchase requests"),
    (4, "Ticket Coordinator", "Triages incoming tickets and routes them to the right team"),
]

# (user_id, full name, role_id); user_system_role_id is 1000 + the row's position.
MEMBERS = [
    (101, "Amara Okafor", 1),
    (102, "Li Wei", 2),
    (103, "Sofia Marquez", 2),
    (104, "Jonas Becker", 2),
    (105, "Priya Nair", 3),
    (106, "Tomasz Nowak", 3),
    (107, "Hana Sato", 4),
    (108, "Diego Alvarez", 4),
    (109, "Fatima Haddad", 4),
]
ADMIN_MEMBERSHIP_BASE = 9000  # + the admin user's primary key


def _email(full_name: str) -> str:
    return full_name.lower().replace(" ", ".") + "@example.com"


class Command(BaseCommand):
    help = "Create demo data (tenant, admin/admin superuser, roles, members, standard workflows). Safe to run again."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--base-url",
            default="http://127.0.0.1:8000",
            help="Where the service will answer, for the printed links (make run passes its HOST and PORT).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        base = options["base_url"].rstrip("/")
        tenant = default_tenant()
        admin_user, admin_created = self._ensure_admin()
        role_names = {role_id: name for role_id, name, _ in ROLES}
        outcomes: Counter[str] = Counter()
        try:
            for role_id, name, description in ROLES:
                outcomes[
                    role_sync(
                        payload={
                            "role_id": role_id,
                            "name": name,
                            "system": "tts",
                            "description": description,
                            "is_custom": False,
                            "created_at": CREATED_AT,
                            "action": "create",
                        },
                        message_id="seed_demo",
                    )
                ] += 1
            members = [
                (1000 + index, user_id, full_name, _email(full_name), role_id)
                for index, (user_id, full_name, role_id) in enumerate(MEMBERS, start=1)
            ]
            members.append(
                (ADMIN_MEMBERSHIP_BASE + admin_user.pk, admin_user.pk, "Demo Admin", admin_user.email or "", 1)
            )
            for user_system_role_id, user_id, full_name, email, role_id in members:
                outcomes[
                    role_member_sync(
                        payload={
                            "user_system_role_id": user_system_role_id,
                            "user_id": user_id,
                            "user_email": email,
                            "user_full_name": full_name,
                            "system": "tts",
                            "role_id": role_id,
                            "role_name": role_names[role_id],
                            "assigned_at": ASSIGNED_AT,
                            "is_active": True,
                            "settings": {},
                            "action": "create",
                        },
                        message_id="seed_demo",
                    )
                ] += 1
        except InvalidMessage as exc:
            raise CommandError(f"Demo data rejected: {exc}") from exc
        # After the roles, so the standard workflows reuse them (same names) instead of seeding their own.
        seed_standard_workflows(tenant=tenant, actor=Actor.system(), demo=False, out=self.stdout.write)

        self.stdout.write(f"Tenant: {tenant.slug}")
        self.stdout.write(f"Admin user: {'created' if admin_created else 'already there'} (pk {admin_user.pk})")
        self.stdout.write(
            f"Sync messages: {outcomes[SyncOutcome.APPLIED]} applied, {outcomes[SyncOutcome.DUPLICATE]} already there"
        )
        for role in role_list(tenant=tenant).filter(role_id__in=list(role_names)):
            self.stdout.write(f"  {role.name} (role_id {role.role_id}): {role.member_count} members")  # type: ignore[attr-defined]
        self.stdout.write("")
        self.stdout.write(
            self.style.SUCCESS(f"Admin login: {base}/admin/  user: {ADMIN_USERNAME}  password: {ADMIN_PASSWORD}")
        )
        self.stdout.write(self.style.SUCCESS(f"API docs: {base}/api/v1/docs/"))

    @staticmethod
    def _ensure_admin() -> tuple[Any, bool]:
        user_model = get_user_model()
        with transaction.atomic():
            user = user_model.objects.filter(username=ADMIN_USERNAME).first()
            if user is not None:
                return user, False
            user = user_model.objects.create_superuser(
                username=ADMIN_USERNAME, email="admin@example.com", password=ADMIN_PASSWORD
            )
        return user, True
