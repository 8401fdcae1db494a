"""Settings for workflow_api, driven entirely by environment variables.

Every variable is documented in `.env.example`. Without any of them the
service runs on an embedded default: SQLite under `var/`, Celery tasks run
in-process, DEBUG on. `DJANGO_ENV=production` refuses to start with missing
or default secrets.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from workflow_api.settings.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = BASE_DIR / "var"

DJANGO_ENV = env_str("DJANGO_ENV", "development")
PRODUCTION = DJANGO_ENV == "production"

INSECURE_DEFAULT_SECRET = "django-insecure-development-only-secret-key-change-me"
INSECURE_DEFAULT_JWT_KEY = "development-only-jwt-signing-key-change-me"

SECRET_KEY = env_str("SECRET_KEY", INSECURE_DEFAULT_SECRET)
JWT_SIGNING_KEY = env_str("JWT_SIGNING_KEY", INSECURE_DEFAULT_JWT_KEY)
DEBUG = env_bool("DEBUG", not PRODUCTION)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [] if PRODUCTION else ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

if PRODUCTION:
    problems = []
    if SECRET_KEY in ("", INSECURE_DEFAULT_SECRET) or len(SECRET_KEY) < 50:
        problems.append("SECRET_KEY must be set to a random value of at least 50 characters")
    if JWT_SIGNING_KEY in ("", INSECURE_DEFAULT_JWT_KEY) or len(JWT_SIGNING_KEY) < 32:
        problems.append("JWT_SIGNING_KEY must be set to the auth service's key (at least 32 characters)")
    if not ALLOWED_HOSTS:
        problems.append("ALLOWED_HOSTS must list the host names the service answers to")
    if DEBUG:
        problems.append("DEBUG must be off")
    if problems:
        raise ImproperlyConfigured("Refusing to start in production: " + "; ".join(problems))

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "workflow_api.core",
    "audit",
    "role",
    "tickets",
    "workflow",
    "step",
    "task",
    "reporting",
    "fieldservice",
]

MIDDLEWARE = [
    "workflow_api.core.logging.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "workflow_api.urls"
WSGI_APPLICATION = "workflow_api.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Database: PostgreSQL in production and CI; a SQLite file under var/ otherwise.
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'workflow_api.sqlite3'}")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60))}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A worker thread and the dev server share the file; wait instead of failing on a lock.
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env_str("STATIC_ROOT", str(VAR_DIR / "static"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# --- Security (production) -------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = PRODUCTION
CSRF_COOKIE_SECURE = PRODUCTION
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
if PRODUCTION:
    # TLS is terminated by the proxy in front of gunicorn.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    # Probes from the orchestrator speak plain HTTP inside the network.
    SECURE_REDIRECT_EXEMPT = [r"^health/"]
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
    SILENCED_SYSTEM_CHECKS = []
    if not SECURE_SSL_REDIRECT:
        # The operator says TLS is enforced in front of us; the warning does not apply.
        SILENCED_SYSTEM_CHECKS.append("security.W008")
    if not SECURE_HSTS_PRELOAD:
        # Preload lists are a deliberate, hard-to-undo opt-in per domain.
        SILENCED_SYSTEM_CHECKS.append("security.W021")

# --- REST framework ----------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["workflow_api.core.auth.JWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"]
    + ([] if PRODUCTION else ["rest_framework.renderers.BrowsableAPIRenderer"]),
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "workflow_api.core.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "workflow_api.core.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "workflow_api",
    "DESCRIPTION": "Workflow orchestration engine for ticket tracking and field service.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI's assets are served from the app itself, not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Tokens are shared with the auth service: HS256, signed with JWT_SIGNING_KEY.
# simplejwt issues and rotates the standalone login's tokens; reading them is
# done by workflow_api.core.auth so that the auth service's tokens (which carry
# no token_type or jti) are accepted too.
SIMPLE_JWT = {
    "ALGORITHM": "HS256",
    "SIGNING_KEY": JWT_SIGNING_KEY,
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env_int("JWT_ACCESS_MINUTES", 30)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env_int("JWT_REFRESH_DAYS", 7)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": True,
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "user_id",
}
JWT_ACCESS_COOKIE = "access_token"
JWT_REFRESH_COOKIE = "refresh_token"
JWT_COOKIE_SECURE = PRODUCTION
ADMIN_ROLE = "tts:Admin"
DEFAULT_TENANT_SLUG = "default"

# --- Celery ------------------------------------------------------------------
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "")
# Without a broker, tasks run in-process: `make run` needs nothing else.
CELERY_IN_PROCESS = CELERY_BROKER_URL == ""
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 300)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 240)
# Ticket intake takes its queue's messages in batches of up to this many (one
# transaction each), so a worker prefetches up to one batch per process more.
INBOUND_BATCH_SIZE = env_int("INBOUND_BATCH_SIZE", 50)
INAPP_NOTIFICATION_QUEUE = env_str("INAPP_NOTIFICATION_QUEUE", "inapp-notification-queue")
TICKET_STATUS_QUEUE = env_str("TICKET_STATUS_QUEUE", "ticket_status-default")
OUTBOX_RELAY_INTERVAL_SECONDS = env_int("OUTBOX_RELAY_INTERVAL_SECONDS", 5)
OUTBOX_RELAY_BATCH = env_int("OUTBOX_RELAY_BATCH", 500)

# --- Logging: one JSON object a line, with the request or message id --------
LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
LOG_FORMAT = env_str("LOG_FORMAT", "json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"correlation": {"()": "workflow_api.core.logging.CorrelationIdFilter"}},
    "formatters": {
        "json": {
            "()": "workflow_api.core.logging.JsonFormatter",
        },
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(correlation_id)s] %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
            "filters": ["correlation"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Django configures its DEFAULT_LOGGING first: plain-text handlers on
        # `django` (console while DEBUG is on, mail_admins otherwise) and
        # `django.server`. Without emptying them those lines would print a
        # second time, in plain text, next to the JSON line from the root.
        "django": {"handlers": [], "level": LOG_LEVEL, "propagate": True},
        # runserver's per-request lines repeat RequestIdMiddleware's access
        # line (workflow_api.access); keep only its errors.
        "django.server": {"handlers": [], "level": "ERROR", "propagate": True},
        "django.db.backends": {"level": "WARNING"},
        "celery": {"level": LOG_LEVEL},
    },
}
