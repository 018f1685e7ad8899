"""``manage.py localagents start|stop``: the sandbox's local compute-plane agents.

``runlakeplane`` calls ``start`` once the web server answers (agents of ready compute planes come
back, authenticating with their stored credential files) and ``stop`` on Ctrl-C: agents run in
their own sessions so that they outlive the Celery task that started them, which also means the
terminal's Ctrl-C does not reach them.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from controlplane.computeplanes.agentinstall import (
    agent_mode,
    agents_root,
    sandbox_gateway_url,
    start_registered_agents,
    stop_all_local_agents,
)


class Command(BaseCommand):
    help = "Start (after a restart) or stop the sandbox's local compute-plane agents."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["start", "stop"])

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "stop":
            stopped = stop_all_local_agents()
            self.stdout.write(f"stopped {len(stopped)} local agent(s)\n")
            return
        if agent_mode() != "sandbox":
            self.stdout.write(
                "agents are installed in EKS (LAKEPLANE_AGENT_MODE=eks); nothing to start\n"
            )
            return
        started = start_registered_agents()
        self.stdout.write(f"started {len(started)} local agent(s)\n")
        for plane_id in (
            sorted(p.name for p in agents_root().iterdir()) if agents_root().is_dir() else []
        ):
            url = sandbox_gateway_url(plane_id)
            if url:
                self.stdout.write(f"  gateway of {plane_id}: {url} (point a Trino client here)\n")
