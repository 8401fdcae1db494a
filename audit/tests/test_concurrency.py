"""Concurrent appends to one tenant, each thread on its own PostgreSQL connection."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, transaction

from audit.models import AuditAction, AuditEvent
from audit.selectors import audit_chain_verify
from audit.services import Actor, audit_append

THREADS = 4
TRANSACTIONS_PER_THREAD = 15


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_appends_to_one_tenant_keep_a_single_unbroken_chain(postgres, tenant):
    start = threading.Barrier(THREADS)

    def append_many(worker: int) -> None:
        try:
            start.wait(timeout=30)
            for n in range(TRANSACTIONS_PER_THREAD):
                # Two events and a round trip per transaction: without the chain
                # lock, another thread reads the same predecessor in that window.
                with transaction.atomic():
                    for half in ("a", "b"):
                        audit_append(
                            tenant=tenant,
                            actor=Actor(id=worker, name=f"worker {worker}"),
                            action=AuditAction.ROLE_UPDATED,
                            target_type="role",
                            target_id=f"{worker}-{n}-{half}",
                        )
                    AuditEvent.objects.filter(tenant=tenant).count()
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        for future in [pool.submit(append_many, worker) for worker in range(THREADS)]:
            future.result()

    prev_hashes = list(AuditEvent.objects.filter(tenant=tenant).values_list("prev_hash", flat=True))
    assert len(prev_hashes) == THREADS * TRANSACTIONS_PER_THREAD * 2
    assert len(set(prev_hashes)) == len(prev_hashes), "two events chained onto the same predecessor"
    result = audit_chain_verify(tenant=tenant)
    assert (result.ok, result.verified) == (True, len(prev_hashes))
