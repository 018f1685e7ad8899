"""Client secrets at rest: Fernet (AES-128-CBC + HMAC-SHA256), keys from the settings.

Lakeplane must present an organization's client secret at the provider's token endpoint, so it
cannot keep only a digest; it keeps the secret encrypted and decrypts it for that one call.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

_INFO = b"lakeplane sso client secret"


class SecretUnreadable(Exception):
    """The stored secret was encrypted with a key that is no longer configured."""


def _derived_key() -> bytes:
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(
        settings.SECRET_KEY.encode()
    )
    return base64.urlsafe_b64encode(raw)


def _fernet() -> MultiFernet:
    keys = [k.encode() for k in settings.LAKEPLANE_SSO_ENCRYPTION_KEYS if k] or [_derived_key()]
    return MultiFernet([Fernet(key) for key in keys])


def encrypt(secret: str) -> str:
    return _fernet().encrypt(secret.encode()).decode()


def decrypt(stored: str) -> str:
    try:
        return _fernet().decrypt(stored.encode()).decode()
    except InvalidToken as exc:
        raise SecretUnreadable(
            "the client secret cannot be decrypted with the current keys"
        ) from exc
