"""gunicorn's settings for the web process: `make web`, the Docker image, docker compose.

Loaded with `gunicorn --config python:workflow_api.gunicorn_conf
workflow_api.wsgi:application`; the bind address and the worker count stay
on the command line (`--bind`, `--workers` or WEB_CONCURRENCY).

Logging is the application's: gunicorn's own lines (start, workers booting
and exiting, timeouts) go through the same JSON formatter and correlation
filter as Django's, so every line of the process is one JSON object
(correlation_id "-" outside a request). gunicorn's access log is off: the
access line comes from RequestIdMiddleware, written while the request id is
bound, so it carries that id like the request's other lines.
"""

from __future__ import annotations

import os

# The same variables, with the same defaults, as settings.LOGGING; read here
# directly, since importing workflow_api.settings would run the whole settings
# module in gunicorn's master process.
_FORMAT = os.environ.get("LOG_FORMAT", "json")
_LEVEL = os.environ.get("LOG_LEVEL", "INFO")

# None: no gunicorn access log (see the module docstring).
accesslog = None
errorlog = "-"
loglevel = _LEVEL.lower()
# No `gunicornc` control socket: its default path ($XDG_RUNTIME_DIR or
# ~/.gunicorn) is shared by every gunicorn of the user on the host, and the
# image's user has no writable home. Nothing here uses it.
control_socket_disable = True

logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"correlation": {"()": "workflow_api.core.logging.CorrelationIdFilter"}},
    "formatters": {
        "json": {"()": "workflow_api.core.logging.JsonFormatter"},
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(correlation_id)s] %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if _FORMAT == "json" else "plain",
            "filters": ["correlation"],
            "stream": "ext://sys.stderr",
        },
    },
    "root": {"handlers": ["console"], "level": _LEVEL},
    "loggers": {
        "gunicorn.error": {"handlers": ["console"], "level": _LEVEL, "propagate": False},
        # gunicorn still hands its access records to this logger (it does
        # whenever logconfig_dict is set); they go nowhere.
        "gunicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
    },
}
