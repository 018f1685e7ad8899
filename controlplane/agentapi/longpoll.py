"""How a desired-state long poll waits for a new version without holding a database connection.

A web worker answering a long poll must not sit on a PostgreSQL connection for 20 s: with a
few hundred agents that is a few hundred idle backends. So the view closes its connection and
waits on something else:

- **Redis pub/sub** when ``LAKEPLANE_AGENT_NOTIFY_URL`` is set (the default whenever the broker
  is Redis). ``publish_desired_state`` publishes the new version after its transaction
  commits; the waiter subscribes *before* it reads the version from the database, so a
  publish that lands between the read and the wait is not missed.
- **A bounded poll** otherwise (the SQLite + filesystem-broker sandbox, or Redis unreachable):
  once a second the waiter opens a connection, reads one integer by primary key and closes it
  again. That is cheap on SQLite (a file open) and keeps the sandbox free of servers.

Either way the agent polls again after a timeout, so a lost notification costs at most one
wait, never correctness.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from functools import cache
from types import TracebackType

import redis
from django.conf import settings
from django.db import connection, transaction

logger = logging.getLogger(__name__)

# The fallback poll's period: an agent hears about a change within a second, and a waiting
# request costs one primary-key read per second.
POLL_INTERVAL_SECONDS = 1.0


def channel_of(compute_plane_id: str) -> str:
    return f"lakeplane:agent:desired-state:{compute_plane_id}"


@cache
def _client(url: str) -> redis.Redis:
    # One connection pool per process and URL; the timeouts bound a hung Redis.
    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)


def release_database_connection() -> None:
    """Close this thread's connection before a wait (not inside a transaction: tests run in one)."""
    if not connection.in_atomic_block:
        connection.close()


def notify_on_commit(compute_plane_id: str, version: int) -> None:
    """Tell waiting long polls about ``version`` once the current transaction has committed."""
    url = settings.LAKEPLANE_AGENT_NOTIFY_URL
    if not url:
        return

    def publish() -> None:
        try:
            _client(url).publish(channel_of(compute_plane_id), str(version))
        except redis.RedisError as exc:
            # Waiters time out and poll again; the change is in the database either way.
            logger.warning(
                "could not publish desired state %s v%s: %s", compute_plane_id, version, exc
            )

    transaction.on_commit(publish)


class VersionWaiter:
    """``with VersionWaiter(plane_id, read_version) as w: ... w.wait(known, timeout)``.

    ``read_version`` reads the current version from the database; the waiter calls it only in
    the polling fallback and closes the connection after each call.
    """

    def __init__(self, compute_plane_id: str, read_version: Callable[[], int]) -> None:
        self.compute_plane_id = compute_plane_id
        self.read_version = read_version
        self._pubsub: redis.client.PubSub | None = None

    def __enter__(self) -> VersionWaiter:
        url = settings.LAKEPLANE_AGENT_NOTIFY_URL
        if url:
            try:
                pubsub = _client(url).pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
                pubsub.subscribe(channel_of(self.compute_plane_id))
                self._pubsub = pubsub
            except redis.RedisError as exc:
                logger.warning("long poll falls back to polling: %s", exc)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._pubsub is not None:
            with contextlib.suppress(redis.RedisError):  # closing a broken connection
                self._pubsub.close()

    @property
    def mode(self) -> str:
        return "pubsub" if self._pubsub is not None else "poll"

    def wait(self, known_version: int, timeout: float) -> bool:
        """Block up to ``timeout`` seconds; True as soon as the version differs from ``known``."""
        release_database_connection()
        deadline = time.monotonic() + timeout
        if self._pubsub is not None:
            try:
                return self._wait_pubsub(known_version, deadline)
            except redis.RedisError as exc:
                logger.warning("long poll falls back to polling: %s", exc)
        return self._wait_poll(known_version, deadline)

    def _wait_pubsub(self, known_version: int, deadline: float) -> bool:
        assert self._pubsub is not None
        while (remaining := deadline - time.monotonic()) > 0:
            message = self._pubsub.get_message(timeout=remaining)
            if message is None or message.get("type") != "message":
                continue
            try:
                if int(message["data"]) != known_version:
                    return True
            except (TypeError, ValueError):
                return True  # not ours to judge: let the caller read the database
        return False

    def _wait_poll(self, known_version: int, deadline: float) -> bool:
        while (remaining := deadline - time.monotonic()) > 0:
            time.sleep(min(POLL_INTERVAL_SECONDS, remaining))
            try:
                changed = self.read_version() != known_version
            finally:
                release_database_connection()
            if changed:
                return True
        return False
