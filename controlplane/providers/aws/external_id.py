"""External IDs for cross-account roles (AWS confused-deputy protection)."""

from __future__ import annotations

import re
import secrets
import string
from typing import Final

ALPHABET: Final = string.ascii_letters + string.digits
# 43 characters from a 62-letter alphabet carry 43 * log2(62) ≈ 256 bits, twice the 128-bit floor
# and still inside the 32-64 character range customers paste into consoles.
LENGTH: Final = 43
_SHAPE: Final = re.compile(r"[A-Za-z0-9]{32,64}")


def generate_external_id() -> str:
    """A fresh external ID: ``[A-Za-z0-9]``, 43 characters, ~256 bits from ``secrets``."""
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def is_valid_external_id(value: str) -> bool:
    """Whether ``value`` has the shape Lakeplane issues (32-64 letters and digits)."""
    return _SHAPE.fullmatch(value) is not None
