"""A real Celery worker process against RabbitMQ and the test database.

Used by tests that must see the engine exactly as deployed: messages published
by a plain Celery client (configured like the upstream services'), consumed by
`celery -A workflow_api worker`, committed to the test database.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from celery import Celery
from django.db import connection
from kombu import Connection, Queue
from kombu.pools import ProducerPool

from workflow_api.core.messaging import INBOUND_QUEUES, INTERNAL_QUEUE, dead_letter_queue_name
from workflow_api.testing.services import require_postgres

ROOT = Path(__file__).resolve().parent.parent.parent


def test_database_url() -> str:
    """A URL for the database the test run is using (test_<name>)."""
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    user = s.get("USER") or "postgres"
    password = f":{s['PASSWORD']}" if s.get("PASSWORD") else ""
    host = s.get("HOST") or "127.0.0.1"
    port = s.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{s['NAME']}"


def upstream_client(broker_url: str) -> Celery:
    """A Celery client with default settings, as the helpdesk and auth services use.

    It behaves like a separate process: it is not made the current app, and it
    gets broker connection and producer pools of its own. By default kombu
    shares both pools per broker URL across the whole process, and with the
    pooled connections their cache of queues already declared, so a second
    client would skip declaring a queue a test had deleted and publish into
    nothing. `upstream_client_close()` closes its connections.
    """
    client = Celery("upstream", broker=broker_url, set_as_current=False)
    client.conf.task_serializer = "json"
    connections = client.connection_for_write().Pool(limit=client.conf.broker_pool_limit)
    client._pool = connections
    client.amqp._producer_pool = ProducerPool(connections, limit=connections.limit)
    return client


def upstream_client_close(client: Celery) -> None:
    client.amqp.producer_pool.force_close_all()
    client.pool.force_close_all()
    client.close()


def purge(broker_url: str, queues: tuple[str, ...] | None = None) -> None:
    """Empty the inbound queues and their dead-letter queues (missing ones are fine)."""
    names = queues or (*INBOUND_QUEUES, INTERNAL_QUEUE)
    with Connection(broker_url) as conn:
        channel = conn.channel()
        for name in names:
            for queue in (name, dead_letter_queue_name(name)):
                try:
                    channel.queue_purge(queue)
                except Exception:  # noqa: BLE001 - the queue does not exist yet
                    channel = conn.channel()


def drain(broker_url: str, queue: str, *, timeout: float = 5.0, expect: int | None = None) -> list[Any]:
    """Take (and ack) raw messages from `queue` until `expect` arrived or none came for `timeout` s.

    Messages are not decoded, so a body that is not valid JSON can be read too:
    use `message.body`, `message.headers`, `message.properties`.
    """
    messages: list[Any] = []
    with Connection(broker_url) as conn:
        source = Queue(queue, channel=conn.channel(), no_declare=True)
        deadline = time.monotonic() + timeout
        while expect is None or len(messages) < expect:
            message = source.get(no_ack=False)
            if message is None:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)
                continue
            messages.append(message)
            message.ack()
            deadline = time.monotonic() + timeout
    return messages


def wait_until(predicate: Callable[[], Any], *, timeout: float = 30.0, interval: float = 0.1) -> Any:
    """Poll until `predicate()` is truthy; fail with the last value on timeout."""
    deadline = time.monotonic() + timeout
    value = predicate()
    while not value:
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value: {value!r})")
        time.sleep(interval)
        value = predicate()
    return value


def worker_argv(*, concurrency: int, hostname: str, extra: tuple[str, ...] = ()) -> list[str]:
    """The command `make worker` runs (celery worker, INFO, --concurrency), for this interpreter.

    Used by the tests' worker harness and by benchmarks/bench_intake.py, so
    both run the worker as it is deployed. `hostname` keeps concurrent
    workers apart; `extra` adds options.
    """
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "workflow_api",
        "worker",
        "--loglevel=INFO",
        f"--concurrency={concurrency}",
        f"--hostname={hostname}",
        *extra,
    ]


class WorkerProcess:
    def __init__(self, broker_url: str, *, concurrency: int = 1, extra_env: dict[str, str] | None = None) -> None:
        self.broker_url = broker_url
        self.concurrency = concurrency
        self.extra_env = extra_env or {}
        self.process: subprocess.Popen[str] | None = None
        self.output: list[str] = []
        self._ready = threading.Event()

    def start(self, *, timeout: float = 60.0) -> WorkerProcess:
        # The worker is another process; SQLite's test database lives in this one's memory.
        require_postgres()
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "workflow_api.settings.test",
            "DATABASE_URL": test_database_url(),
            "CELERY_BROKER_URL": self.broker_url,
            "LOG_FORMAT": "plain",
            **self.extra_env,
        }
        self._ready.clear()
        self.process = subprocess.Popen(
            worker_argv(
                concurrency=self.concurrency,
                hostname=f"test-{os.getpid()}-{time.monotonic_ns()}@%h",
                # Tests start and stop workers often; the cluster chatter only slows that down.
                extra=("--pool=prefork", "--without-gossip", "--without-mingle", "--without-heartbeat"),
            ),
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        threading.Thread(target=self._pump, daemon=True).start()
        if not self._ready.wait(timeout):
            self.stop()
            raise AssertionError("worker did not become ready:\n" + "".join(self.output[-50:]))
        return self

    def _pump(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)
            if " ready." in line:
                self._ready.set()

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool children)."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def kill_pool_processes(self) -> list[int]:
        """SIGKILL every pool process (the children of the worker's main process), leaving the worker running."""
        assert self.process is not None and self.process.poll() is None
        children = pool_processes(self.process.pid)
        assert children, "the worker has no pool process"
        for pid in children:
            os.kill(pid, signal.SIGKILL)
        return children

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


def pool_processes(pid: int) -> list[int]:
    """The pids of the processes whose parent is `pid` (Linux /proc), lowest first."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # "pid (comm) state ppid ...": comm may hold spaces, so split after its closing parenthesis.
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended while the list was read
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return sorted(children)


@contextmanager
def running_worker(broker_url: str, **kwargs: Any) -> Iterator[WorkerProcess]:
    worker = WorkerProcess(broker_url, **kwargs).start()
    try:
        yield worker
    except BaseException:
        # The worker's own log is what explains a failed expectation.
        sys.stderr.write("---- worker output ----\n" + "".join(worker.output[-200:]))
        raise
    finally:
        worker.stop()


def queue_ready(broker_url: str, queue: str) -> int:
    """How many messages wait in `queue`; delivered but unacknowledged ones are not counted."""
    with Connection(broker_url) as conn:
        _name, ready, _consumers = conn.default_channel.queue_declare(queue=queue, passive=True)
    return int(ready)
