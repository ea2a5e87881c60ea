"""Corral's settings, read from the environment.

With nothing set, Corral runs on embedded defaults: SQLite under var/, an
embedded Celery broker on the filesystem and a simulated hypervisor head.
"""

import ipaddress
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from panel.env import env_bool, env_choice, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("CORRAL_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    configured = env_str("SECRET_KEY")
    if configured:
        return configured
    # Embedded default: a random key kept beside the database, so sessions and
    # cached credentials survive restarts without a value in the source tree.
    path = VAR_DIR / "secret_key"
    if not path.exists():
        import secrets

        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list(
    "ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"]
)
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "otp_yubikey",
    "django_htmx",
    "axes",
    "panel",
    "accounts",
    "groups",
    "machines",
    "privileges",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "panel.middleware.RefuseNulInPath",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "panel.urls"
WSGI_APPLICATION = "panel.wsgi.application"
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "machines.dashboard.access.cluster_nav",
            ],
        },
    },
]

# Database: SQLite under var/ unless DATABASE_URL names another.
DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    try:
        _db = dj_database_url.parse(DATABASE_URL, conn_max_age=60)
    except ValueError as exc:
        raise ImproperlyConfigured(f"DATABASE_URL is not understood: {exc}") from None
else:
    _db = {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": VAR_DIR / "corral.sqlite3",
    }
if _db["ENGINE"] == "django.db.backends.sqlite3":
    # WAL and immediate transactions let the web process and the Celery worker
    # share one file without "database is locked" errors.
    _db["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
    "accounts.hashers.MD5CryptPasswordHasher",
]
if env_bool("CORRAL_FAST_PASSWORD_HASHER", False):
    # Tests only: hashing at full strength would dominate the suite's run time.
    PASSWORD_HASHERS.insert(0, "django.contrib.auth.hashers.MD5PasswordHasher")
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

CACHE_URL = env_str("CACHE_URL")
if CACHE_URL:
    CACHES = {
        "default": {
            "BACKEND": "panel.cache.RedisCache",
            "LOCATION": CACHE_URL,
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)
LOGIN_URL = "/panel/login"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.BasicOtpAuthentication",
        "accounts.authentication.BearerAuthentication",
        "accounts.authentication.BrowserSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": [
        "panel.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "EXCEPTION_HANDLER": "panel.api.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

# The OpenAPI schema at /openapi.json and its viewer at /docs/, with the
# viewer's assets served by the panel itself (no CDN).
SPECTACULAR_SETTINGS = {
    "TITLE": "Corral API",
    "DESCRIPTION": "The BigV cloud-server API as Corral serves it. Errors are "
    "flat: `{field: [messages]}` for bad input, `{detail: text}` otherwise.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {"Level": "privileges.levels.Level"},
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "panel.openapi.add_plain_endpoints",
        "panel.openapi.add_otp_header",
        "panel.openapi.describe_path_parameters",
    ],
}

# Celery: an embedded broker on the filesystem unless CELERY_BROKER_URL is set.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or "filesystem://"
if CELERY_BROKER_URL == "filesystem://":
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
        # Exchange bindings; kombu's default is ./control in the working folder.
        "control_folder": str(_broker_dir / "control"),
    }
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND") or None
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
# A task is acknowledged only once done, and a worker that dies hands its task
# back: with one message prefetched at a time, nothing waits behind a long job.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "celery"
# Operations go to the queue of their machine's head (machines.operations.enqueue
# names it per message); the periodic tasks run on the default queue.
CELERY_TASK_ROUTES = {
    "machines.tasks.reap_expired_leases": {"queue": "celery"},
    "machines.tasks.reconcile": {"queue": "celery"},
    "machines.tasks.run_backup_schedules": {"queue": "celery"},
}
CELERY_BEAT_SCHEDULE = {
    "reap-expired-leases": {
        "task": "machines.tasks.reap_expired_leases",
        "schedule": env_int("CORRAL_REAP_SECONDS", 30, minimum=1),
    },
    "reconcile": {
        "task": "machines.tasks.reconcile",
        "schedule": env_int("CORRAL_RECONCILE_SECONDS", 60, minimum=1),
    },
    "run-backup-schedules": {
        "task": "machines.tasks.run_backup_schedules",
        "schedule": env_int("CORRAL_BACKUP_SCHEDULE_SECONDS", 60, minimum=1),
    },
    "purge-expired-deletions": {
        "task": "machines.tasks.purge_expired_deletions",
        "schedule": env_int("CORRAL_PURGE_SECONDS", 3600, minimum=1),
    },
}
# A worker started without -Q also consumes every registered head's queue.
# That suits the embedded default (one host); in production each head has its
# own worker: `celery -A panel worker -Q head.<label>`.
CORRAL_WORKER_ALL_HEADS = env_bool(
    "CORRAL_WORKER_ALL_HEADS", CELERY_BROKER_URL == "filesystem://"
)

# Operations: a running operation holds a lease its worker renews; once the
# lease lapses the worker is taken for dead and the operation retried or failed.
CORRAL_OPERATION_LEASE_SECONDS = env_int(
    "CORRAL_OPERATION_LEASE_SECONDS", 120, minimum=1
)
CORRAL_OPERATION_MAX_ATTEMPTS = env_int("CORRAL_OPERATION_MAX_ATTEMPTS", 5, minimum=1)
# The first retry after a transient hypervisor error waits this long; each
# further one twice as long, up to ten times as long.
CORRAL_OPERATION_RETRY_SECONDS = env_int(
    "CORRAL_OPERATION_RETRY_SECONDS", 10, minimum=0
)
# How long a guest has to honour an ACPI powerdown before Corral reports that
# it ignored it (the machine is then left on).
CORRAL_POWERDOWN_GRACE_SECONDS = env_int(
    "CORRAL_POWERDOWN_GRACE_SECONDS", 60, minimum=0
)
# Base images, one qcow2 file per distribution (`bookworm.qcow2`).
CORRAL_IMAGE_DIR = Path(env_str("CORRAL_IMAGE_DIR", str(VAR_DIR / "images")))
# Where `simulated://` heads keep their state.
CORRAL_SIMULATED_DIR = Path(
    env_str("CORRAL_SIMULATED_DIR", str(VAR_DIR / "simulated-heads"))
)
# Testing and drills only: hypervisor calls fail as planned in
# <VAR_DIR>/faults/<head>.json (see machines/faults.py).
CORRAL_FAULT_INJECTION = env_bool("CORRAL_FAULT_INJECTION", False)
CORRAL_FAULT_DIR = Path(env_str("CORRAL_FAULT_DIR", str(VAR_DIR / "faults")))

# Clients: the TCP peer, or X-Forwarded-For only when the peer is a trusted proxy.
try:
    TRUSTED_PROXIES = [
        ipaddress.ip_network(net, strict=False) for net in env_list("TRUSTED_PROXIES")
    ]
except ValueError as exc:
    raise ImproperlyConfigured(f"TRUSTED_PROXIES: {exc}") from None

# Sign-up: open, closed, or open pending a cluster admin's approval.
CORRAL_SIGNUP = env_choice("CORRAL_SIGNUP", ("open", "closed", "approval"), "open")
CORRAL_CLUSTER_DOMAIN = env_str("CORRAL_CLUSTER_DOMAIN", "corral.local")
# A soft-deleted machine can be restored for this long, then it is purged.
CORRAL_DELETED_VM_GRACE_DAYS = env_int("CORRAL_DELETED_VM_GRACE_DAYS", 14, minimum=0)
CORRAL_SESSION_VALIDITY_MAX = env_int("CORRAL_SESSION_VALIDITY_MAX", 86400, minimum=60)
CORRAL_CREDENTIAL_CACHE_SECONDS = env_int(
    "CORRAL_CREDENTIAL_CACHE_SECONDS", 300, minimum=0
)
CORRAL_OTP_REPLAY_MAX_AGE = env_int("CORRAL_OTP_REPLAY_MAX_AGE", 86400, minimum=0)
CORRAL_YUBIKEY_SERVICE = env_str("CORRAL_YUBIKEY_SERVICE", "default")
CORRAL_YUBIKEY_TIMEOUT = env_int("CORRAL_YUBIKEY_TIMEOUT", 10, minimum=1)

# Lockout: failures count per (username, address) and per address.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 10, minimum=1)
AXES_COOLOFF_TIME = env_int("AXES_COOLOFF_MINUTES", 15, minimum=1) / 60
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"], "ip_address"]
AXES_HANDLER = "accounts.lockout.LockoutHandler"
AXES_CLIENT_IP_CALLABLE = "panel.context.client_address"
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
AXES_ENABLE_ACCESS_FAILURE_LOG = False

EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend"
)
# For EMAIL_BACKEND=django.core.mail.backends.smtp.EmailBackend.
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "corral@localhost")
# Password reset links stay valid this long.
PASSWORD_RESET_TIMEOUT = env_int("PASSWORD_RESET_TIMEOUT", 3600, minimum=60)

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"mask_tokens": {"()": "panel.logging.MaskSecretsFilter"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["mask_tokens"]},
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # The filter also sits on the loggers whose messages carry request paths,
    # so that a record is masked before any handler, whoever added it, sees it.
    "loggers": {
        "django.server": {
            "handlers": ["console"],
            "filters": ["mask_tokens"],
            "level": "INFO",
            "propagate": False,
        },
        "django.request": {"filters": ["mask_tokens"]},
    },
}

# Corral answers lockouts itself (in the API's error format and on the sign-in
# page), so django-axes' middleware, which would replace those answers, is off.
SILENCED_SYSTEM_CHECKS = ["axes.W002"]
AXES_DISABLE_ACCESS_LOG = True
