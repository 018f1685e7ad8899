"""Production: every secret comes from the environment, and HTTPS is assumed everywhere.

``python manage.py check --deploy --fail-level WARNING`` passes with this module.
"""

from controlplane.settings.base import *  # noqa: F403
from controlplane.settings.env import env

SECRET_KEY = env.str("SECRET_KEY")  # required: missing fails at start
DEBUG = False
LAKEPLANE_MODE = "production"

SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
# /healthz and /readyz are probed over plain HTTP by load balancers inside the VPC.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True

# Vite names built assets by content hash (assets/index-3f9a1c.js): cache them for a year.
WHITENOISE_IMMUTABLE_FILE_TEST = r"^.+/assets/.+-[0-9A-Za-z_-]{8,}\.(?:js|css|woff2?|svg|png)$"
