"""Logging filters (imported by the LOGGING setting: no Django or DRF imports here)."""

from __future__ import annotations

import logging


class ClientErrorsWithoutTraceback(logging.Filter):
    """A client's mistake (a 4xx Django logs, e.g. ``django.security.RequestDataTooBig``) is one
    log line, not a traceback: tracebacks are for our bugs."""

    def filter(self, record: logging.LogRecord) -> bool:
        status_code = getattr(record, "status_code", None)
        if isinstance(status_code, int) and 400 <= status_code < 500:
            record.exc_info = None
            record.exc_text = None
        return True
