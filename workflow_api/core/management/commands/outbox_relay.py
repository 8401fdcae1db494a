from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import close_old_connections

from workflow_api.core.outbox import outbox_relay


class Command(BaseCommand):
    help = "Publish pending outbox messages (once, or --forever polling every --interval seconds)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--forever", action="store_true", help="Keep relaying until stopped.")
        parser.add_argument("--interval", type=float, default=1.0, help="Seconds between polls when idle.")
        parser.add_argument("--batch-size", type=int, default=None)

    def handle(self, *args: Any, forever: bool, interval: float, batch_size: int | None, **options: Any) -> None:
        if interval <= 0:
            raise CommandError("--interval must be greater than 0")
        if batch_size is not None and batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        while True:
            close_old_connections()
            result = outbox_relay(batch_size=batch_size)
            if result.sent:
                self.stdout.write(f"sent {result.sent} message(s)")
            if not forever:
                if result.failed:
                    self.stderr.write("a publish failed; the message stays pending and is retried with backoff")
                return
            # Idle (or backing off): wait before polling again; a full batch goes straight on.
            if result.failed or result.locked_out or result.sent < (batch_size or 1):
                time.sleep(interval)
