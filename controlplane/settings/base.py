"""Settings shared by every mode. Mode modules (``sandbox``, ``production``) import from here."""

from __future__ import annotations

from pathlib import Path

from kombu import Exchange, Queue

from controlplane.settings.env import BASE_DIR, data_dir, env, log_format

DATA_DIR = data_dir()

DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS: list[str] = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS: list[str] = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    # Django's admin with Lakeplane's site: staff only, and over SSO where required.
    "controlplane.core.adminsite.LakeplaneAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "mozilla_django_oidc",
    "controlplane.core",
    "controlplane.tenancy",
    "controlplane.cloudaccounts",
    "controlplane.computeplanes",
    "controlplane.agentapi",
    "controlplane.clusters",
    "controlplane.catalogs",
    "controlplane.access",
    "controlplane.caching",
    "controlplane.billing",
    "controlplane.gateways",
    "controlplane.sso",
]

# django-prometheus' pair wraps everything (request rate and latency by route); the request
# context (request id, organization, access log) comes right after the first, so every answer,
# even a redirect by SecurityMiddleware, carries an id and is logged.
MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "controlplane.core.observability.RequestContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "controlplane.core.headers.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "controlplane.urls"
WSGI_APPLICATION = "controlplane.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "controlplane" / "templates"],
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

# --- Storage -------------------------------------------------------------------------------
# The embedded default is a SQLite file in the data dir; CI and production set DATABASE_URL.
DATABASES = {
    # An empty DATABASE_URL counts as unset (production refuses both).
    "default": env.db_url_config(
        env.str("DATABASE_URL", default="") or f"sqlite:///{DATA_DIR / 'lakeplane.sqlite3'}"
    ),
}
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=60))
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web process read while a Celery worker writes; the timeout rides out
    # the short write locks the two take on one file.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
    }
    # Tests run on a file too (not Django's in-memory default): a live server thread (which the
    # local agent processes call) then gets its own connection instead of sharing the test's.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test_lakeplane.sqlite3")}
# A few hot fixed statements run as server-side prepared statements on PostgreSQL
# (controlplane/core/db.py). Set false behind a transaction-mode connection pooler.
LAKEPLANE_DB_PREPARED_STATEMENTS = env.bool("LAKEPLANE_DB_PREPARED_STATEMENTS", default=True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "tenancy.User"

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "controlplane.tenancy.oidc.LakeplaneOIDCBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(DATA_DIR / "staticfiles")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
FRONTEND_DIST = BASE_DIR / "frontend" / "dist"
STATICFILES_DIRS = [FRONTEND_DIST] if FRONTEND_DIST.exists() else []
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- REST API ------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Bearer first: its WWW-Authenticate header turns a missing credential into a 401.
        "controlplane.tenancy.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "controlplane.core.pagination.CursorPagination",
    "EXCEPTION_HANDLER": "controlplane.core.errors.problem_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DATETIME_FORMAT": "%Y-%m-%dT%H:%M:%S.%fZ",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
if env.bool("LAKEPLANE_BROWSABLE_API", default=False):
    REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"].append(  # type: ignore[attr-defined]
        "rest_framework.renderers.BrowsableAPIRenderer"
    )

SPECTACULAR_SETTINGS = {
    "TITLE": "Lakeplane API",
    "DESCRIPTION": (
        "Managed Presto and Trino on AWS, in your own VPC. Authenticate with "
        "`Authorization: Bearer <token>`; organizations are addressed by slug in the path."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "ENUM_NAME_OVERRIDES": {
        "OperationStatusEnum": "controlplane.core.models.OperationStatus",
        "StepStatusEnum": "controlplane.core.models.StepStatus",
        "CloudAccountStatusEnum": "controlplane.cloudaccounts.models.CloudAccountStatus",
        "RoleEnum": "controlplane.core.roles.Role",
        "ComputePlaneStatusEnum": "controlplane.computeplanes.models.ComputePlaneStatus",
        "CacheStatusEnum": "controlplane.caching.models.CACHE_STATES",
        "ClusterStatusEnum": "controlplane.clusters.models.ClusterStatus",
        "MetastoreStatusEnum": "controlplane.catalogs.models.MetastoreStatus",
        "PropagationStatusEnum": "controlplane.catalogs.models.PropagationStatus",
        "AccessPrivilegeEnum": "computeplane_agent.access.PRIVILEGES",
    },
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    # The problem+json errors every operation can answer, declared once (core/api/schema.py).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "controlplane.core.api.schema.add_problem_responses",
    ],
    # Swagger UI's assets come from drf-spectacular-sidecar as static files, not a CDN, so
    # /api/docs/ works where browsers cannot reach the internet (air-gapped installs, sandbox).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Celery --------------------------------------------------------------------------------
# The embedded default is a filesystem broker in the data dir: no server needed on a fresh
# machine. CI and production point CELERY_BROKER_URL at Redis or RabbitMQ.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = DATA_DIR / "broker"
    for _sub in ("out", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {
        "data_folder_in": str(_broker_dir / "out"),
        "data_folder_out": str(_broker_dir / "out"),
        "data_folder_processed": str(_broker_dir / "processed"),
        # Exchange metadata; kombu's default is ./control in whatever directory we run from.
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # A message a dead worker held comes back after this long. Steps are bounded to
        # seconds and waits are re-scheduled messages, so an hour is generous in production;
        # tests shorten it to watch redelivery happen.
        "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600),
    }
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True  # state lives in the Operation rows, not a result backend
CELERY_TASK_DEFAULT_QUEUE = "default"
# Declared, not only routed to: a worker started without -Q consumes every declared queue,
# whereas an undeclared routed-to queue (provisioning) would be consumed by nobody.
CELERY_TASK_QUEUES = [
    Queue(name, Exchange(name), routing_key=name) for name in ("provisioning", "default", "billing")
]
CELERY_TASK_ROUTES = {
    "controlplane.core.tasks.advance_operation": {"queue": "provisioning"},
    "controlplane.billing.*": {"queue": "billing"},
}
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_IMPORTS: list[str] = env.list("CELERY_IMPORTS", default=[])
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    # Operations whose message was lost with a dead process (core/workflows.py,
    # resume_stalled_operations); cheap (one indexed query) so every minute.
    "resume-stalled-operations": {
        "task": "controlplane.core.tasks.resume_stalled",
        "schedule": env.float("LAKEPLANE_STALL_SWEEP_SECONDS", default=60.0),
        "options": {"queue": "provisioning"},
    },
    # Orphans are rare (a crash between create and record, a row deleted by hand); a quarter
    # hour bounds what they cost the customer without listing their account all day.
    "sweep-orphaned-resources": {
        "task": "controlplane.computeplanes.tasks.sweep_orphaned_resources",
        "schedule": env.float("LAKEPLANE_SWEEP_SECONDS", default=900.0),
        "options": {"queue": "provisioning"},
    },
    # Sends the drift checks that are due; each resource is checked once per
    # LAKEPLANE_DRIFT_INTERVAL_SECONDS at its own phase (computeplanes/drift.py).
    "check-drift": {
        "task": "controlplane.computeplanes.tasks.check_drift",
        "schedule": env.float("LAKEPLANE_DRIFT_TICK_SECONDS", default=60.0),
    },
    # Marks agents stale (no heartbeat for N intervals) and prunes old report records.
    "agent-housekeeping": {
        "task": "controlplane.agentapi.tasks.agent_housekeeping",
        "schedule": env.float("LAKEPLANE_AGENT_HEARTBEAT_SECONDS", default=30.0),
    },
    # Usage facts and their hourly/daily rollups, rebuilt for the trailing window (and further
    # back when a late report arrived); then budgets, then marketplace metering.
    "billing-rollup": {
        "task": "controlplane.billing.tasks.rollup_usage",
        "schedule": env.float("LAKEPLANE_BILLING_ROLLUP_SECONDS", default=300.0),
    },
    "billing-meter": {
        "task": "controlplane.billing.tasks.meter_marketplace",
        "schedule": env.float("LAKEPLANE_BILLING_METER_SECONDS", default=600.0),
    },
}
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")

# --- Drift detection -----------------------------------------------------------------------
# Each cloud account (6 read-only AWS calls) and compute plane (at most 16) is checked this
# often: a quarter hour notices a deleted VPC or a revoked role soon enough to explain a failure
# before the customer meets it, for ~1,500 calls a day per plane.
LAKEPLANE_DRIFT_INTERVAL_SECONDS = env.float("LAKEPLANE_DRIFT_INTERVAL_SECONDS", default=900.0)
# At most this many checks of each kind are sent per tick; the rest wait for the next one.
LAKEPLANE_DRIFT_BATCH = env.int("LAKEPLANE_DRIFT_BATCH", default=500)

# --- Operations ----------------------------------------------------------------------------
# A claimed step is leased to one worker for this long. Steps are bounded to a few seconds,
# so 60 s leaves a wide margin; a worker killed mid-step frees its step when the lease ends.
LAKEPLANE_OPERATION_LEASE_SECONDS = env.int("LAKEPLANE_OPERATION_LEASE_SECONDS", default=60)
# An operation whose step lease ran out, or whose next message was due, this long ago has lost
# its message (its worker or web process died); the sweep above sends another. Well past the
# lease and any queue backlog, since a message resent for a merely slow operation costs a
# delivery; short next to the hour Redis takes to hand a dead worker's message back.
LAKEPLANE_STALLED_OPERATION_SECONDS = env.float("LAKEPLANE_STALLED_OPERATION_SECONDS", default=300)
LAKEPLANE_STALLED_BATCH = env.int("LAKEPLANE_STALLED_BATCH", default=500)
# An unexpected error in a step is retried this many times (with backoff) before it fails.
LAKEPLANE_STEP_MAX_ATTEMPTS = env.int("LAKEPLANE_STEP_MAX_ATTEMPTS", default=5)
# Upper bound on how long a step waiting for AWS (EKS CREATING, NAT pending) sleeps between
# polls. Reconcilers pick delays that suit real AWS (30 s for EKS); the emulator flips state
# at once, so end-to-end tests lower this to keep their runs short.
LAKEPLANE_MAX_POLL_SECONDS = env.float("LAKEPLANE_MAX_POLL_SECONDS", default=300.0)
# botocore retries by sleeping inside the task. Provisioning allows one quick retry (its
# jittered backoff is under a second) and turns anything longer, such as sustained
# throttling, into a re-scheduled step, so no worker sits waiting on AWS.
LAKEPLANE_PROVISIONING_MAX_ATTEMPTS = env.int("LAKEPLANE_PROVISIONING_MAX_ATTEMPTS", default=2)
# One NAT gateway per availability zone ("per_az", survives an AZ outage) or one shared
# NAT gateway ("single", costs less).
LAKEPLANE_NAT_MODE = env.str("LAKEPLANE_NAT_MODE", default="per_az")

# --- Agent API -----------------------------------------------------------------------------
# A bootstrap token only has to live from the install step to the agent's first call.
LAKEPLANE_AGENT_BOOTSTRAP_TTL_SECONDS = env.int(
    "LAKEPLANE_AGENT_BOOTSTRAP_TTL_SECONDS", default=3600
)
# Agent credentials live a week and are replaced on a heartbeat in their last third; the old
# one keeps working for the overlap, long enough for a lost response to be retried.
LAKEPLANE_AGENT_CREDENTIAL_TTL_SECONDS = env.int(
    "LAKEPLANE_AGENT_CREDENTIAL_TTL_SECONDS", default=7 * 24 * 3600
)
LAKEPLANE_AGENT_CREDENTIAL_OVERLAP_SECONDS = env.int(
    "LAKEPLANE_AGENT_CREDENTIAL_OVERLAP_SECONDS", default=600
)
# Agents send a heartbeat this often; missing this many in a row marks the agent stale.
LAKEPLANE_AGENT_HEARTBEAT_SECONDS = env.int("LAKEPLANE_AGENT_HEARTBEAT_SECONDS", default=30)
LAKEPLANE_AGENT_STALE_INTERVALS = env.int("LAKEPLANE_AGENT_STALE_INTERVALS", default=3)
# Longest desired-state long poll. It must stay under gunicorn's worker timeout (30 s) and
# any proxy's idle timeout; the agent simply polls again.
LAKEPLANE_AGENT_MAX_WAIT_SECONDS = env.int("LAKEPLANE_AGENT_MAX_WAIT_SECONDS", default=25)
# Write-behind ingestion of heartbeats and status reports (PostgreSQL only; agentapi/ingest.py):
# each web process writes what it accepted in one batch this often (0: one write per request).
LAKEPLANE_AGENT_INGEST_FLUSH_SECONDS = env.float(
    "LAKEPLANE_AGENT_INGEST_FLUSH_SECONDS", default=0.2
)
# Reports a process may hold before it answers the next ones synchronously again.
LAKEPLANE_AGENT_INGEST_MAX_PENDING = env.int("LAKEPLANE_AGENT_INGEST_MAX_PENDING", default=20000)
# How long a web process trusts a credential it authenticated in full for those two reports.
# Every buffered report is checked against the credential's row when written, so a revoked
# credential writes nothing at once, and a refused report makes the process forget the
# credential: its next request there is a 401 (agentapi/credcache.py). The desired-state long
# poll always authenticates in full.
LAKEPLANE_AGENT_AUTH_CACHE_SECONDS = env.float("LAKEPLANE_AGENT_AUTH_CACHE_SECONDS", default=900.0)
# Where a long poll hears about a new desired-state version: a Redis URL (pub/sub), or empty
# to fall back to a bounded poll of the version (SQLite/filesystem-broker sandbox).
LAKEPLANE_AGENT_NOTIFY_URL = env.str(
    "LAKEPLANE_AGENT_NOTIFY_URL",
    default=CELERY_BROKER_URL if CELERY_BROKER_URL.startswith("redis://") else "",
)

# How the compute plane workflow installs the agent: "sandbox" starts a local agent process per
# compute plane against the directory target, "eks" applies the agent's manifests to the plane's
# EKS cluster. Empty: "sandbox" when AWS_ENDPOINT_URL points at an emulator, else "eks".
LAKEPLANE_AGENT_MODE = env.str("LAKEPLANE_AGENT_MODE", default="")
# The URL agents reach the control plane at (runlakeplane sets http://HOST:PORT).
LAKEPLANE_PUBLIC_URL = env.str("LAKEPLANE_PUBLIC_URL", default="http://127.0.0.1:8000")
# Sandbox local agents keep their manifests, credential, pid and log under <this>/<plane id>/.
LAKEPLANE_LOCAL_AGENTS_DIR = env.str(
    "LAKEPLANE_LOCAL_AGENTS_DIR", default=str(DATA_DIR / "computeplanes")
)
# Sandbox: each local agent comes with an engine supervisor that runs a sandbox engine (DuckDB
# behind the Presto/Trino protocol) per running cluster; off, clusters have no query endpoint.
LAKEPLANE_SANDBOX_ENGINES = env.bool("LAKEPLANE_SANDBOX_ENGINES", default=True)
# The most workers one organisation's clusters may have together; autoscaling never goes past
# what it leaves for a cluster, and no policy may name a max_count above it.
LAKEPLANE_ORG_WORKER_QUOTA = env.int("LAKEPLANE_ORG_WORKER_QUOTA", default=200)
# The agent image the eks mode installs (a customer's registry mirror may replace it).
LAKEPLANE_AGENT_IMAGE = env.str("LAKEPLANE_AGENT_IMAGE", default="")
# wait_for_agent: polls this often, this many times, before failing with agent_not_connected.
LAKEPLANE_AGENT_CONNECT_POLL_SECONDS = env.float(
    "LAKEPLANE_AGENT_CONNECT_POLL_SECONDS", default=5.0
)
LAKEPLANE_AGENT_CONNECT_MAX_POLLS = env.int("LAKEPLANE_AGENT_CONNECT_MAX_POLLS", default=60)

# --- OpenID Connect (mozilla-django-oidc) --------------------------------------------------
# Login through an IdP is on when its issuer's endpoints and a client are configured.
OIDC_RP_CLIENT_ID = env.str("OIDC_RP_CLIENT_ID", default="")
OIDC_RP_CLIENT_SECRET = env.str("OIDC_RP_CLIENT_SECRET", default="")
OIDC_OP_AUTHORIZATION_ENDPOINT = env.str("OIDC_OP_AUTHORIZATION_ENDPOINT", default="")
OIDC_OP_TOKEN_ENDPOINT = env.str("OIDC_OP_TOKEN_ENDPOINT", default="")
OIDC_OP_USER_ENDPOINT = env.str("OIDC_OP_USER_ENDPOINT", default="")
OIDC_OP_JWKS_ENDPOINT = env.str("OIDC_OP_JWKS_ENDPOINT", default="")
# When set, an ID token from any other issuer is refused (`manage.py oidc_discover ISSUER`
# prints this and the endpoints above from the issuer's discovery document).
OIDC_OP_ISSUER = env.str("OIDC_OP_ISSUER", default="")
# Confidential client authentication at the token endpoint: form body by default, HTTP Basic
# for IdPs registered with client_secret_basic.
OIDC_TOKEN_USE_BASIC_AUTH = env.bool("OIDC_TOKEN_USE_BASIC_AUTH", default=False)
# Calls to the IdP happen inside a web request; without a bound a hung IdP holds the worker.
OIDC_TIMEOUT = env.float("OIDC_TIMEOUT", default=10.0)
OIDC_RP_SIGN_ALGO = env.str("OIDC_RP_SIGN_ALGO", default="RS256")
OIDC_RP_SCOPES = env.str("OIDC_RP_SCOPES", default="openid email profile")
OIDC_USE_PKCE = env.bool("OIDC_USE_PKCE", default=True)
OIDC_PKCE_CODE_CHALLENGE_METHOD = "S256"
OIDC_PROVIDER_NAME = env.str("OIDC_PROVIDER_NAME", default="single sign-on")
OIDC_ENABLED = bool(OIDC_RP_CLIENT_ID and OIDC_OP_AUTHORIZATION_ENDPOINT)
# A refused sign-in (unverified email, deactivated user, IdP error) lands on the sign-in page.
LOGIN_REDIRECT_URL_FAILURE = "/login/"

# --- Per-organization single sign-on (controlplane/sso) -----------------------------------
# Fernet keys (comma separated) that encrypt organizations' OIDC client secrets at rest: the
# first encrypts, all decrypt, so a key is rotated by putting the new one first. Empty: one
# key derived from SECRET_KEY (then rotating SECRET_KEY means entering the secrets again).
LAKEPLANE_SSO_ENCRYPTION_KEYS = env.list("LAKEPLANE_SSO_ENCRYPTION_KEYS", default=[])
# Where domain-verification TXT records are looked up ("host" or "host:port"); empty: the
# system's resolver. Tests point it at a DNS server they run.
LAKEPLANE_SSO_DNS_NAMESERVER = env.str("LAKEPLANE_SSO_DNS_NAMESERVER", default="")
# An organization's issuer must be https; plain http is accepted on loopback addresses only
# when this is on (the sandbox's local providers). Production turns it off.
LAKEPLANE_SSO_ALLOW_LOOPBACK_HTTP = env.bool("LAKEPLANE_SSO_ALLOW_LOOPBACK_HTTP", default=True)

# --- AWS -----------------------------------------------------------------------------------
# With no endpoint override Lakeplane talks to AWS itself; the sandbox points this at the
# local emulator.
AWS_ENDPOINT_URL = env.str("AWS_ENDPOINT_URL", default="")
AWS_DEFAULT_REGION = env.str("AWS_DEFAULT_REGION", default="us-east-1")
# The principal customers' roles trust: Lakeplane's own AWS account (or its control-plane
# role). No default here: the sandbox defaults to the emulator's account, production requires it.
LAKEPLANE_VENDOR_PRINCIPAL = env.str("LAKEPLANE_VENDOR_PRINCIPAL", default="")
# Where the quick-create link finds the onboarding template (an S3 URL Lakeplane publishes).
LAKEPLANE_CFN_TEMPLATE_URL = env.str(
    "LAKEPLANE_CFN_TEMPLATE_URL",
    default="https://lakeplane-public.s3.amazonaws.com/onboarding/customer-role.json",
)

# --- Security defaults shared by every mode -------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # the console reads it to send X-CSRFToken
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# Everything from this origin and nothing inline: the console's build, the sign-in page and
# Swagger UI load their scripts and styles as files (docs/security.md "Security headers").
LAKEPLANE_CONTENT_SECURITY_POLICY = env.str(
    "LAKEPLANE_CONTENT_SECURITY_POLICY",
    default="; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "font-src 'self'",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    ),
)
# Trust X-Forwarded-For for audit source IPs (and rate-limit keys) only behind a known proxy.
LAKEPLANE_TRUSTED_PROXY_COUNT = env.int("LAKEPLANE_TRUSTED_PROXY_COUNT", default=0)
# /admin/ is routed only when enabled (production: off unless LAKEPLANE_ADMIN_ENABLED=true);
# with REQUIRE_SSO only staff whose session came from single sign-on get in (core/adminsite.py).
LAKEPLANE_ADMIN_ENABLED = env.bool("LAKEPLANE_ADMIN_ENABLED", default=True)
LAKEPLANE_ADMIN_REQUIRE_SSO = env.bool("LAKEPLANE_ADMIN_REQUIRE_SSO", default=False)

# --- Rate limits (core/ratelimit.py, docs/security.md) ---------------------------------------
# "N/SECONDS": attempts per window, per client address (sign-in also per email, token
# creation per user). Atomic in Redis when the broker is Redis, else in the database.
LAKEPLANE_RATE_LIMITS = {
    "sign-in": env.str("LAKEPLANE_RATE_LIMIT_SIGN_IN", default="10/60"),
    "token-create": env.str("LAKEPLANE_RATE_LIMIT_TOKEN_CREATE", default="10/60"),
    # Every compute plane's agent registers once (and again after a reinstall); many planes
    # of one customer may share a NAT address.
    "agent-register": env.str("LAKEPLANE_RATE_LIMIT_AGENT_REGISTER", default="120/60"),
}
LAKEPLANE_RATE_LIMIT_REDIS_URL = env.str(
    "LAKEPLANE_RATE_LIMIT_REDIS_URL",
    default=CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(("redis://", "rediss://")) else "",
)
# Keeps the keys of deployments that share one Redis apart.
LAKEPLANE_RATE_LIMIT_PREFIX = env.str(
    "LAKEPLANE_RATE_LIMIT_PREFIX", default=str(DATABASES["default"].get("NAME", ""))
)

# --- Observability (docs/observability.md) -------------------------------------------------
# Scrapers of /metrics send this as a bearer token. Empty: open in the sandbox, 404 in production.
LAKEPLANE_METRICS_TOKEN = env.str("LAKEPLANE_METRICS_TOKEN", default="")
# plain: one readable line per record; json: one JSON object per line (production's default).
LOG_FORMAT = log_format(default="plain")

# Production sets its own formatter on this handler (LOG_FORMAT defaults to json there).
LOG_CONSOLE_HANDLER: dict[str, object] = {
    "class": "logging.StreamHandler",
    "formatter": LOG_FORMAT,
    "filters": ["client_errors", "request_context", "redact_secrets"],
}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"()": "controlplane.core.observability.PlainFormatter"},
        "json": {"()": "controlplane.core.observability.JsonFormatter"},
    },
    "filters": {
        "client_errors": {"()": "controlplane.core.logfilters.ClientErrorsWithoutTraceback"},
        "request_context": {"()": "controlplane.core.observability.RequestContextFilter"},
        # STS secrets, session tokens and signatures never reach a log line, whichever logger
        # wrote them (the AWS SDK's loggers carry the same filter).
        "redact_secrets": {"()": "controlplane.providers.aws.credentials.RedactSecretsFilter"},
    },
    "handlers": {"console": LOG_CONSOLE_HANDLER},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # Django logs a client's mistakes caught before any view with a traceback (a logger's
        # filters do not reach its children, hence each by name).
        **{
            name: {"filters": ["client_errors"]}
            for name in (
                "django.request",
                "django.security.RequestDataTooBig",
                "django.security.DisallowedHost",
                "django.security.TooManyFieldsSent",
                "django.security.TooManyFilesSent",
                "django.security.SuspiciousOperation",
                "django.security.csrf",
            )
        },
    },
}

# --- Billing ---------------------------------------------------------------------------------
# Each rollup pass recomputes this many trailing minutes (reports arrive a minute or two late).
LAKEPLANE_BILLING_REBUILD_TRAILING_MINUTES = env.int(
    "LAKEPLANE_BILLING_REBUILD_TRAILING_MINUTES", default=60
)
# Per-minute facts are kept this long, then dropped by range; hourly and daily rollups stay.
LAKEPLANE_BILLING_RAW_RETENTION_DAYS = env.int("LAKEPLANE_BILLING_RAW_RETENTION_DAYS", default=35)
# Budget alert thresholds, percent of the monthly budget (actual or forecast spend).
LAKEPLANE_BILLING_BUDGET_THRESHOLDS = (50, 80, 100)
# AWS Marketplace metering: the dimension usage is metered in (compute-unit-hours, rounded up
# per organization-hour), attempts before a record is dead-lettered, and the base backoff.
LAKEPLANE_MARKETPLACE_DIMENSION = env.str(
    "LAKEPLANE_MARKETPLACE_DIMENSION", default="compute_unit_hours"
)
LAKEPLANE_MARKETPLACE_MAX_ATTEMPTS = env.int("LAKEPLANE_MARKETPLACE_MAX_ATTEMPTS", default=6)
LAKEPLANE_MARKETPLACE_BACKOFF_SECONDS = env.float(
    "LAKEPLANE_MARKETPLACE_BACKOFF_SECONDS", default=60.0
)
LAKEPLANE_MARKETPLACE_REGION = env.str("LAKEPLANE_MARKETPLACE_REGION", default="us-east-1")

# --- Email (budget alerts) ---------------------------------------------------------------------
# The sandbox prints mail to the console; production sets an SMTP backend (e.g. Amazon SES's SMTP
# interface) with EMAIL_HOST/EMAIL_PORT/EMAIL_HOST_USER/EMAIL_HOST_PASSWORD.
EMAIL_BACKEND = env.str(
    "LAKEPLANE_EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend"
)
DEFAULT_FROM_EMAIL = env.str(
    "LAKEPLANE_EMAIL_FROM", default="Lakeplane <billing@lakeplane.invalid>"
)
