"""Running the same steps in several threads at once, for race tests on PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

from django.db import connection

T = TypeVar("T")


def in_lockstep(rounds: Sequence[T], step: Callable[[T], object], *, threads: int = 2, timeout: float = 60) -> None:
    """Run `step(item)` for every item of `rounds` in `threads` threads, all starting each round together.

    Each thread has its own database connection (closed at the end), so the
    steps really race in the database. The first exception any thread raised
    is raised here, after every thread stopped; a failing thread releases the
    others (the barrier is aborted) instead of leaving them waiting.
    """
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            for item in rounds:
                barrier.wait(timeout=10)
                step(item)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread below
            errors.append(exc)
            barrier.abort()
        finally:
            connection.close()

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=timeout)
    if any(worker.is_alive() for worker in workers):
        raise TimeoutError(f"a thread was still running after {timeout} s")
    # A BrokenBarrierError in one thread is only the echo of another's failure.
    real = [error for error in errors if not isinstance(error, threading.BrokenBarrierError)]
    if real or errors:
        raise (real or errors)[0]
