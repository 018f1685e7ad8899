"""Opaque, prefixed, time-sortable identifiers (``cl_01HV…``).

26 Crockford base-32 characters: 48 bits of milliseconds then 80 random bits, so ids sort by
creation time (cursor pagination orders by id) and cannot be guessed.
"""

from __future__ import annotations

import secrets
import time

from django.db import models
from django.utils.deconstruct import deconstructible

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"

PREFIXES = {
    "acct",
    "cp",
    "cl",
    "cat",
    "ms",
    "cache",
    "op",
    "tok",
    "usr",
    "org",
    "mem",
    "evt",
    "step",
    "agc",
    "cred",
    "gw",
    "rg",
    "rr",
    "qry",
    "sev",
    "acl",
    "sso",
    "dom",
    "gmap",
    "scim",
    "scimu",
    "scimg",
}


def new_id(prefix: str) -> str:
    value = (int(time.time() * 1000) << 80) | secrets.randbits(80)
    chars = []
    for _ in range(26):
        value, rem = divmod(value, 32)
        chars.append(_ALPHABET[rem])
    return f"{prefix}_{''.join(reversed(chars))}"


@deconstructible
class IdGenerator:
    def __init__(self, prefix: str) -> None:
        if prefix not in PREFIXES:
            raise ValueError(f"unknown id prefix {prefix!r}")
        self.prefix = prefix

    def __call__(self) -> str:
        return new_id(self.prefix)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IdGenerator) and other.prefix == self.prefix

    def __hash__(self) -> int:
        return hash(self.prefix)


class PrefixedIdField(models.CharField):  # type: ignore[type-arg]
    """Primary key holding a prefixed id, generated on create."""

    def __init__(self, prefix: str = "", *args: object, **kwargs: object) -> None:
        self.prefix = prefix
        kwargs.setdefault("max_length", 40)
        kwargs.setdefault("primary_key", True)
        kwargs.setdefault("editable", False)
        if prefix:
            kwargs.setdefault("default", IdGenerator(prefix))
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def deconstruct(self):  # type: ignore[no-untyped-def]
        name, path, args, kwargs = super().deconstruct()
        kwargs["prefix"] = self.prefix
        return name, path, args, kwargs
