"""Agent credentials this web process has recently proven against the database.

The write-behind path (ingest.py) answers a heartbeat or status report without a database
round trip when the credential was authenticated in full (``services.authenticate_credential``)
less than ``LAKEPLANE_AGENT_AUTH_CACHE_SECONDS`` ago. Only the digest is kept, never the
secret. What the cache can get wrong is bounded and never reaches the data: every buffered
report is checked against the credential's row again when it is written (ingest's flush), so
a credential revoked in between writes nothing, and the flush forgets every credential it
refused, so the next request is a 401. Only the answers to reports received between the
revocation and that process's next flush can be a 200/202 instead of a 401 (in the revoking
process none: revoking forgets the entry at once). The desired-state long poll, usage reports
and registration never use the cache.
"""

from __future__ import annotations

import hmac
import threading
import time
from dataclasses import dataclass
from datetime import datetime

from controlplane.agentapi.models import rotation_due

DEFAULT_MAX_ENTRIES = 100_000


@dataclass(frozen=True)
class KnownCredential:
    credential_id: str
    digest: str
    compute_plane_id: str
    expires_at: datetime
    replaced: bool
    checked_at: float  # time.monotonic() of the full authentication

    def rotation_due(self, now: datetime) -> bool:
        return rotation_due(expires_at=self.expires_at, replaced=self.replaced, now=now)


class CredentialCache:
    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._entries: dict[str, KnownCredential] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def remember(
        self,
        *,
        credential_id: str,
        digest: str,
        compute_plane_id: str,
        expires_at: datetime,
        replaced: bool,
    ) -> KnownCredential:
        known = KnownCredential(
            credential_id, digest, compute_plane_id, expires_at, replaced, time.monotonic()
        )
        with self._lock:
            self._entries.pop(credential_id, None)
            while len(self._entries) >= self.max_entries:
                # Oldest first (dicts keep insertion order; remember re-inserts).
                self._entries.pop(next(iter(self._entries)))
            self._entries[credential_id] = known
        return known

    def recall(
        self,
        credential_id: str,
        digest: str,
        compute_plane_id: str,
        *,
        now: datetime,
        max_age_seconds: float,
    ) -> KnownCredential | None:
        """The entry if it is fresh, matches the presented secret and plane and has not
        expired; otherwise None (the caller authenticates in full)."""
        known = self._entries.get(credential_id)
        if known is None:
            return None
        if (
            time.monotonic() - known.checked_at >= max_age_seconds
            or known.expires_at <= now
            or known.compute_plane_id != compute_plane_id
            or not hmac.compare_digest(known.digest, digest)
        ):
            return None
        return known

    def forget(self, credential_id: str) -> None:
        with self._lock:
            self._entries.pop(credential_id, None)

    def forget_compute_plane(self, compute_plane_id: str) -> None:
        with self._lock:
            stale = [k for k, v in self._entries.items() if v.compute_plane_id == compute_plane_id]
            for key in stale:
                del self._entries[key]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


credentials = CredentialCache()
