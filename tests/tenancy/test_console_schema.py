"""The console's committed API schema still matches the server for every call the console makes.

frontend/openapi.json (and the types generated from it) is committed so that building the
console needs no server. This test regenerates the schema and compares, for each path the console
calls in frontend/src/api/client.ts, the operations and every component they reference. Changes
elsewhere in the API do not fail it; a change to something the console uses does, with the
commands that bring the console up to date.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.core.management import call_command

REPO = Path(__file__).resolve().parents[2]
FRONTEND = REPO / "frontend"
CALL = re.compile(r"""\bapi\.(?:GET|POST|PUT|PATCH|DELETE)\(\s*"([^"]+)\"""")
REGENERATE = (
    "regenerate the console's schema and types: .venv/bin/python manage.py spectacular "
    "--file frontend/openapi.json --format openapi-json && (cd frontend && npm run gen:api)"
)


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value.rsplit("/", 1)[-1]
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _used_part(schema: dict[str, Any], paths: list[str]) -> dict[str, Any]:
    """The path items the console calls and the components they reach, transitively.

    ``security`` is left out: the order of auth schemes does not change the generated types.
    """
    items = {
        p: {m: {k: v for k, v in op.items() if k != "security"} for m, op in item.items()}
        for p, item in schema["paths"].items()
        if p in paths
    }
    components: dict[str, Any] = {}
    pending = list(_refs(items))
    while pending:
        name = pending.pop()
        if name in components:
            continue
        components[name] = schema["components"]["schemas"].get(name)
        pending.extend(_refs(components[name]))
    return {"paths": items, "components": components}


def test_console_schema_matches_server_for_the_calls_it_makes(tmp_path: Path) -> None:
    paths = sorted(set(CALL.findall((FRONTEND / "src" / "api" / "client.ts").read_text())))
    assert "/api/v1/me" in paths, "found no API calls in client.ts; has the call style changed?"

    fresh_file = tmp_path / "openapi.json"
    call_command("spectacular", file=str(fresh_file), format="openapi-json", fail_on_warn=False)
    fresh = json.loads(fresh_file.read_text())
    committed = json.loads((FRONTEND / "openapi.json").read_text())

    missing = [p for p in paths if p not in fresh["paths"]]
    assert not missing, f"the console calls paths the API no longer has: {missing}"
    assert _used_part(committed, paths) == _used_part(fresh, paths), REGENERATE
