"""Cursor pagination: ``?limit=`` (default 50, max 200) → ``{"results": [...], "next": url|null}``.

A ``limit`` that is not a whole number of at least 1 is a 400 naming ``limit`` (never silently
the default); one above 200 is served as 200.

Ids are time-sortable, so ordering by id is ordering by creation and the cursor is stable
while rows are added.
"""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions, pagination
from rest_framework.response import Response


class CursorPagination(pagination.CursorPagination):
    page_size = 50
    max_page_size = 200
    page_size_query_param = "limit"
    ordering = "-id"

    def get_page_size(self, request: Any) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not raw.isdigit() or int(raw) < 1:
            raise exceptions.ValidationError(
                {"limit": [f"Give a whole number from 1 to {self.max_page_size}, not {raw!r}."]}
            )
        return min(int(raw), self.max_page_size)

    def get_paginated_response(self, data: Any) -> Response:
        return Response(
            {"results": data, "next": self.get_next_link(), "previous": self.get_previous_link()}
        )

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["results", "next"],
            "properties": {
                "results": schema,
                "next": {"type": "string", "nullable": True, "format": "uri"},
                "previous": {"type": "string", "nullable": True, "format": "uri"},
            },
        }
