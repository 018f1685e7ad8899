"""The embedded default: a fresh machine with no servers and no AWS account.

SQLite, a filesystem broker, a generated secret key, and (with no AWS credentials) the local
AWS emulator. Every value can still be overridden from the environment.
"""

from controlplane.settings.base import *  # noqa: F403
from controlplane.settings.env import EMULATOR_ACCOUNT_ID, env, sandbox_secret_key

SECRET_KEY = env.str("SECRET_KEY", default="") or sandbox_secret_key()
DEBUG = env.bool("DJANGO_DEBUG", default=False)
LAKEPLANE_MODE = "sandbox"
# Customers' roles trust the emulator's own account unless told otherwise.
LAKEPLANE_VENDOR_PRINCIPAL = (
    LAKEPLANE_VENDOR_PRINCIPAL or f"arn:aws:iam::{EMULATOR_ACCOUNT_ID}:root"  # noqa: F405
)

# The sandbox serves the console's build (frontend/dist) straight from STATICFILES_DIRS, so
# `npm run build` is enough and no collectstatic step is needed; autorefresh picks up a rebuild's
# new hashed file names without a restart. Production keeps WhiteNoise's defaults and serves
# what collectstatic gathered into STATIC_ROOT.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
