"""The RabbitMQ topology: queue names from the message contract, routes, dead-lettering.

Upstream services publish with their own Celery clients, which declare each
queue as Celery does by default: a durable queue with no arguments, bound to a
direct exchange of the same name. RabbitMQ refuses a re-declaration whose
arguments differ, so the inbound queues here are declared exactly that way and
carry no `x-dead-letter-*` arguments. Dead-lettering is done by the engine
itself: a message that can never be processed is recorded in the
InboundFailure table and re-published to the `<queue>.dlq` queue through the
`workflow_api.dlx` exchange before it is acknowledged (see core/inbound.py).
"""

from __future__ import annotations

from django.conf import settings
from kombu import Exchange, Queue

TICKET_QUEUE = "TICKET_TASKS_PRODUCTION"
ROLE_SYNC_QUEUE = "tts.role.sync"
USER_ROLE_SYNC_QUEUE = "tts.user_system_role.sync"
WORKFLOW_SEED_QUEUE = "workflow_seed_queue"
ORDER_COMPLETED_QUEUE = "order.completed"
INTERNAL_QUEUE = "workflow_api.internal"

INBOUND_QUEUES = (TICKET_QUEUE, ROLE_SYNC_QUEUE, USER_ROLE_SYNC_QUEUE, WORKFLOW_SEED_QUEUE, ORDER_COMPLETED_QUEUE)

DEAD_LETTER_EXCHANGE = Exchange("workflow_api.dlx", type="direct", durable=True)

# Wire names of inbound jobs -> queue (the contract, messages.md).
INBOUND_ROUTES = {
    "tickets.tasks.receive_ticket": TICKET_QUEUE,
    "tickets.tasks.create_task_for_ticket": TICKET_QUEUE,
    "role.tasks.sync_role": ROLE_SYNC_QUEUE,
    "role.tasks.sync_user_system_role": USER_ROLE_SYNC_QUEUE,
    "workflow.seed_workflows": WORKFLOW_SEED_QUEUE,
    "orders.order_completed": ORDER_COMPLETED_QUEUE,
}


def dead_letter_queue_name(queue: str) -> str:
    return f"{queue}.dlq"


def contract_queue(name: str) -> Queue:
    """A queue declared the way a default Celery client declares it."""
    return Queue(name, Exchange(name, type="direct", durable=True), routing_key=name, durable=True)


def dead_letter_queue(queue: str) -> Queue:
    return Queue(dead_letter_queue_name(queue), DEAD_LETTER_EXCHANGE, routing_key=queue, durable=True)


def consumed_queues() -> list[Queue]:
    return [contract_queue(name) for name in (*INBOUND_QUEUES, INTERNAL_QUEUE)]


def outbound_routes() -> dict[str, dict[str, str]]:
    notification_queue = settings.INAPP_NOTIFICATION_QUEUE
    return {
        "notifications.send_assignment_notification": {"queue": notification_queue},
        "notifications.send_escalation_notification": {"queue": notification_queue},
        "notifications.send_task_transfer_notification": {"queue": notification_queue},
        "send_ticket_status": {"queue": settings.TICKET_STATUS_QUEUE},
    }


def task_routes() -> dict[str, dict[str, str]]:
    routes = {name: {"queue": queue} for name, queue in INBOUND_ROUTES.items()}
    routes.update(outbound_routes())
    routes["core.*"] = {"queue": INTERNAL_QUEUE}
    return routes
