"""The embedded default: a fresh machine with no servers and no AWS account.

SQLite, a filesystem broker, a generated secret key, and (with no AWS credentials) the local
AWS emulator. Every value can still be overridden from the environment.
"""

from controlplane.settings.base import *  # noqa: F403
from controlplane.settings.env import env, sandbox_secret_key

SECRET_KEY = env.str("SECRET_KEY", default="") or sandbox_secret_key()
DEBUG = env.bool("DJANGO_DEBUG", default=False)
LAKEPLANE_MODE = "sandbox"
