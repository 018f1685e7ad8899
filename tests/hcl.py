"""Reading Terraform files in tests with python-hcl2."""

from __future__ import annotations

import json
from typing import Any

import hcl2


def plain(value: Any) -> Any:
    """python-hcl2 8 keeps string literals quoted (keys too); strip that for comparisons."""
    if isinstance(value, dict):
        return {plain(k): plain(v) for k, v in value.items() if k != "__is_block__"}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return json.loads(value)
    return value


def load_hcl(text: str) -> dict[str, Any]:
    return dict(plain(hcl2.loads(text)))
