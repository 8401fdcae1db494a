# syntax=docker/dockerfile:1
# One image for every process: web (the default command), worker, beat, relay
# and one-off management commands. docker-compose.yml shows how each is run.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- builder: the pinned runtime requirements in a virtualenv ----------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
COPY requirements.txt /tmp/requirements.txt
# Every pin has a binary wheel (psycopg[binary] included), so no compiler is needed.
RUN /opt/venv/bin/pip install -r /tmp/requirements.txt

# --- runtime -----------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DJANGO_SETTINGS_MODULE=workflow_api.settings \
    WEB_CONCURRENCY=2
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home --shell /usr/sbin/nologin app
WORKDIR /app
COPY --from=builder /opt/venv /opt/venv
# The code stays owned by root: the app user can read it, not change it.
COPY . .
# Static files are collected at build time in production mode, so whitenoise's
# manifest (staticfiles.json) exists; a development-mode collect would leave the
# admin without it. The secrets here are throw-away values that only satisfy
# the production start-up checks; nothing else runs with them. STATIC_ROOT
# defaults to var/static, i.e. /app/var/static.
RUN DJANGO_ENV=production \
    SECRET_KEY=build-only-not-a-secret-0000000000000000000000000000000000 \
    JWT_SIGNING_KEY=build-only-not-a-secret-00000000000000 \
    ALLOWED_HOSTS=build.invalid \
    python manage.py collectstatic --noinput --verbosity 0 \
    && mkdir -p var \
    && chown app:app var
# var/ is the only writable place: celery beat keeps its schedule file there.
USER app
EXPOSE 8000
# Liveness only (the process answers); readiness (/health/ready/) is probed by
# the orchestrator, see docker-compose.yml. ALLOWED_HOSTS must include
# 127.0.0.1 for this probe to be answered. Worker and beat containers replace
# this check with their own.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "docker/healthcheck.py", "http", "http://127.0.0.1:8000/health/live/"]
# Same server and settings as `make web` (workflow_api/gunicorn_conf.py: JSON
# log lines, the access line written by the app with its request id);
# gunicorn reads WEB_CONCURRENCY for its worker count.
CMD ["gunicorn", "--config", "python:workflow_api.gunicorn_conf", "workflow_api.wsgi:application", "--bind", "0.0.0.0:8000"]
