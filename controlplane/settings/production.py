"""Production: every secret comes from the environment, and HTTPS is assumed everywhere.

``python manage.py check --deploy --fail-level WARNING`` passes with this module.
"""

from controlplane.settings.base import *  # noqa: F403
from controlplane.settings.base import (
    CELERY_BROKER_URL,
    DATABASES,
    LOG_CONSOLE_HANDLER,
    OIDC_ENABLED,
)
from controlplane.settings.env import EMULATOR_ACCOUNT_ID, env, log_format, refuse, required

# Everything below is required: a missing or empty one stops the process, naming the variable.
SECRET_KEY = required("SECRET_KEY", "sessions, CSRF and token digests are keyed with it")
if len(SECRET_KEY) < 50:
    refuse("SECRET_KEY", "is too short: use at least 50 random characters")

required("DATABASE_URL", "a PostgreSQL URL, postgres://user:password@host:5432/name")
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    refuse(
        "DATABASE_URL",
        "must name a PostgreSQL database (postgres://...): production runs on PostgreSQL only",
    )

required("CELERY_BROKER_URL", "redis:// or amqp://; operations cannot run without a broker")
if not CELERY_BROKER_URL.startswith(("redis://", "rediss://", "amqp://", "amqps://")):
    refuse(
        "CELERY_BROKER_URL",
        "must be a Redis or RabbitMQ URL (redis://, amqp://), not a local broker",
    )

LAKEPLANE_VENDOR_PRINCIPAL = required(
    "LAKEPLANE_VENDOR_PRINCIPAL", "the ARN of Lakeplane's own AWS account that customer roles trust"
)
if f":{EMULATOR_ACCOUNT_ID}:" in LAKEPLANE_VENDOR_PRINCIPAL:
    refuse(
        "LAKEPLANE_VENDOR_PRINCIPAL",
        "names the local AWS emulator's account; set the real vendor ARN",
    )

DEBUG = False
LAKEPLANE_SSO_ALLOW_LOOPBACK_HTTP = False
LAKEPLANE_MODE = "production"

# The admin is for Lakeplane's staff: off unless enabled, and then over single sign-on only.
LAKEPLANE_ADMIN_ENABLED = env.bool("LAKEPLANE_ADMIN_ENABLED", default=False)
LAKEPLANE_ADMIN_REQUIRE_SSO = True
if LAKEPLANE_ADMIN_ENABLED and not OIDC_ENABLED:
    refuse(
        "LAKEPLANE_ADMIN_ENABLED",
        "needs single sign-on (OIDC_RP_CLIENT_ID and the OIDC_OP_* endpoints): "
        "in production the admin is for staff signed in over SSO only",
    )

SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
# /healthz and /readyz are probed over plain HTTP by load balancers inside the VPC.
# So is /metrics, scraped by Prometheus from inside the cluster (it needs its bearer token).
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True

# Vite names built assets by content hash (assets/index-3f9a1c.js): cache them for a year.
WHITENOISE_IMMUTABLE_FILE_TEST = r"^.+/assets/.+-[0-9A-Za-z_-]{8,}\.(?:js|css|woff2?|svg|png)$"

# Log collectors parse one JSON object per line; LOG_FORMAT=plain is there for a human at a shell.
LOG_FORMAT = log_format(default="json")
LOG_CONSOLE_HANDLER["formatter"] = LOG_FORMAT
