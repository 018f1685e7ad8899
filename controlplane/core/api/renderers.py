"""A JSONRenderer that splices in values already encoded as JSON (stored representations)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from rest_framework.renderers import JSONRenderer


class RawJSON(str):
    """Text that is already JSON, written by this same renderer (representation.encode)."""


def _has_raw(value: Any) -> bool:
    if isinstance(value, RawJSON):
        return True
    if isinstance(value, Mapping):
        return any(_has_raw(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_has_raw(v) for v in value)
    return False


def _decoded(value: Any) -> Any:
    if isinstance(value, RawJSON):
        return json.loads(value)
    if isinstance(value, Mapping):
        return {k: _decoded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_decoded(v) for v in value]
    return value


class PreRenderedJSONRenderer(JSONRenderer):
    """Writes the same bytes as JSONRenderer, copying :class:`RawJSON` values verbatim.

    Compact output (the default) is the concatenation of the parts, each rendered by
    JSONRenderer itself; an indented answer (``Accept: application/json; indent=2``) decodes
    the parts and renders the whole as usual.
    """

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        if not _has_raw(data):
            return super().render(data, accepted_media_type, renderer_context)
        if self.get_indent(accepted_media_type or "", renderer_context or {}) is not None:
            return super().render(_decoded(data), accepted_media_type, renderer_context)
        return self._compact(data).encode()

    def _compact(self, value: Any) -> str:
        if isinstance(value, RawJSON):
            return str(value)
        if isinstance(value, Mapping) and _has_raw(value):
            members = (f"{self._compact(str(k))}:{self._compact(v)}" for k, v in value.items())
            return "{" + ",".join(members) + "}"
        if isinstance(value, list | tuple) and _has_raw(value):
            if all(isinstance(v, RawJSON) for v in value):  # a page of stored items
                return "[" + ",".join(value) + "]"
            return "[" + ",".join(self._compact(v) for v in value) + "]"
        if value is None:
            return "null"  # JSONRenderer.render(None) is an empty body, not a JSON null
        return super().render(value).decode()
