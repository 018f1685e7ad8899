from __future__ import annotations

import math
import string

from controlplane.providers.aws import generate_external_id, is_valid_external_id
from controlplane.providers.aws.external_id import ALPHABET, LENGTH


def test_external_ids_have_the_documented_shape_and_entropy() -> None:
    ids = [generate_external_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    assert all(32 <= len(i) <= 64 and is_valid_external_id(i) for i in ids)
    assert set("".join(ids)) == set(string.ascii_letters + string.digits)
    assert LENGTH * math.log2(len(ALPHABET)) >= 128


def test_shape_check_rejects_what_lakeplane_never_issues() -> None:
    assert not is_valid_external_id("short")
    assert not is_valid_external_id("a" * 65)
    assert not is_valid_external_id("a" * 31 + "-")
    assert is_valid_external_id("A1" * 16)
