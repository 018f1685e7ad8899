"""``make run``'s start/stop rules: ports, banner, stop order and the rotated sandbox token."""

import contextlib
import socket
import subprocess
import sys
from io import StringIO

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from controlplane.core.management.commands.runlakeplane import (
    SANDBOX_TOKEN_DAYS,
    SANDBOX_TOKEN_NAME,
    banner_lines,
    bootstrap_demo,
    stop_in_order,
)
from controlplane.sandbox import endpoint
from controlplane.sandbox.server import DEFAULT_HOST
from controlplane.tenancy.models import ApiToken


def test_a_taken_configured_port_is_an_error_naming_the_variable():
    with socket.socket() as busy:
        busy.bind((DEFAULT_HOST, 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(endpoint.PortTaken, match="LAKEPLANE_EMULATOR_PORT"):
            endpoint.choose_port(str(port))
    with pytest.raises(endpoint.PortTaken, match="LAKEPLANE_EMULATOR_PORT"):
        endpoint.choose_port("abc")


def test_without_configuration_a_free_port_is_chosen_when_the_default_is_taken():
    with socket.socket() as busy:
        busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # When something else already holds the default port, that is the same situation.
        with contextlib.suppress(OSError):
            busy.bind((DEFAULT_HOST, endpoint.DEFAULT_PORT))
            busy.listen()
        port = endpoint.choose_port(None)
        assert port != endpoint.DEFAULT_PORT
        with socket.socket() as probe:
            probe.bind((DEFAULT_HOST, port))


@pytest.mark.django_db
def test_the_banner_shows_the_minted_token_once_without_a_prefix():
    # The token as make run gets it from bootstrap (which prints "token: …"), not a literal.
    token = bootstrap_demo("pw")
    lines = banner_lines("http://127.0.0.1:8000/", "pw", token, {})
    token_line = next(line for line in lines if "API token" in line)
    assert token.startswith("lpt_")
    assert token_line.startswith(f"  API token: {token} ")
    assert "token: token:" not in "\n".join(lines)
    assert sum(line.count("lpt_") for line in lines) == 2  # the token line and the curl example


def test_components_stop_newest_first_each_with_sigterm(tmp_path):
    log = tmp_path / "stopped"
    child = (
        "import signal, sys, time\n"
        "def bye(*_):\n"
        f"    open({str(log)!r}, 'a').write(sys.argv[1] + chr(10)); sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, bye)\n"
        f"open({str(tmp_path)!r} + '/up-' + sys.argv[1], 'w').close()\n"
        "time.sleep(60)\n"
    )
    names = ["aws-emulator", "web", "worker", "beat"]
    processes = [
        (name, subprocess.Popen([sys.executable, "-c", child, name], start_new_session=True))
        for name in names
    ]
    while not all((tmp_path / f"up-{name}").exists() for name in names):
        pass
    warnings: list[str] = []
    order = stop_in_order(processes, warnings.append, timeout=10)
    assert order == ["beat", "worker", "web", "aws-emulator"]
    assert log.read_text().split() == order  # each ended on SIGTERM, one after the other
    assert warnings == []
    assert all(proc.returncode == 0 for _, proc in processes)


@pytest.mark.django_db
def test_each_start_rotates_the_sandbox_token_and_it_expires():
    def start() -> str:
        out = StringIO()
        call_command(
            "bootstrap",
            org="demo",
            email="demo@lakeplane.local",
            token_name=SANDBOX_TOKEN_NAME,
            expires_in_days=SANDBOX_TOKEN_DAYS,
            stdout=out,
        )
        return out.getvalue().strip().removeprefix("token: ")

    first, second = start(), start()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {first}")
    assert client.get("/api/v1/me").status_code == 401
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {second}")
    assert client.get("/api/v1/me").status_code == 200
    live = ApiToken.objects.filter(name=SANDBOX_TOKEN_NAME, revoked_at__isnull=True)
    assert live.count() == 1
    assert live.get().expires_at is not None
