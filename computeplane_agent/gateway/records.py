"""Query records, batched to the agent from a bounded buffer: a slow agent never stalls queries."""

from __future__ import annotations

import logging
from collections import deque
from typing import Any

import aiohttp

log = logging.getLogger(__name__)

BUFFER = 5000  # a few minutes of a busy plane; beyond that the oldest records are dropped
BATCH = 200
FLUSH_SECONDS = 2.0


class QueryRecorder:
    def __init__(self) -> None:
        self.buffer: deque[dict[str, Any]] = deque(maxlen=BUFFER)
        self.dropped = 0
        self.sent = 0

    def add(self, record: dict[str, Any]) -> None:
        if len(self.buffer) == self.buffer.maxlen:
            self.dropped += 1
        self.buffer.append(record)

    async def flush(self, session: aiohttp.ClientSession, agent_url: str | None) -> None:
        while self.buffer and agent_url:
            batch = [self.buffer.popleft() for _ in range(min(BATCH, len(self.buffer)))]
            try:
                async with session.post(f"{agent_url}/v1/queries", json={"queries": batch}) as resp:
                    if resp.status >= 300:
                        raise aiohttp.ClientResponseError(resp.request_info, (), status=resp.status)
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.warning("query records not delivered, kept for the next try: %s", exc)
                self.buffer.extendleft(reversed(batch))
                return
            self.sent += len(batch)
