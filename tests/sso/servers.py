"""Servers the SSO tests talk to over real sockets: a DNS server answering TXT queries from a
zone the test fills in, and an HTTP server publishing OpenID discovery documents."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest


@dataclass
class DnsZone:
    """TXT records by name; what the server answers, changed by the test as it goes."""

    txt: dict[str, list[str]] = field(default_factory=dict)
    queries: list[str] = field(default_factory=list)


def _serve_dns(sock: socket.socket, zone: DnsZone, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            data, peer = sock.recvfrom(4096)
        except TimeoutError:
            continue
        except OSError:
            return
        query = dns.message.from_wire(data)
        response = dns.message.make_response(query)
        question = query.question[0]
        name = question.name.to_text().rstrip(".").lower()
        zone.queries.append(name)
        values = zone.txt.get(name)
        if values and question.rdtype == dns.rdatatype.TXT:
            response.answer.append(
                dns.rrset.from_text_list(
                    question.name, 60, "IN", "TXT", [json.dumps(v) for v in values]
                )
            )
        elif not values:
            response.set_rcode(dns.rcode.NXDOMAIN)
        sock.sendto(response.to_wire(), peer)


@pytest.fixture
def dns_zone(settings: Any) -> Iterator[DnsZone]:
    """A DNS server on a loopback UDP port that domain verification is pointed at."""
    zone = DnsZone()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    stop = threading.Event()
    thread = threading.Thread(target=_serve_dns, args=(sock, zone, stop), daemon=True)
    thread.start()
    settings.LAKEPLANE_SSO_DNS_NAMESERVER = f"127.0.0.1:{sock.getsockname()[1]}"
    yield zone
    stop.set()
    thread.join(timeout=5)
    sock.close()


@dataclass
class DiscoveryServer:
    """Publishes ``/<name>/.well-known/openid-configuration`` for issuers ``url/<name>``."""

    url: str
    documents: dict[str, Any] = field(default_factory=dict)

    def issuer(self, name: str, **overrides: Any) -> str:
        issuer = f"{self.url}/{name}"
        self.documents[name] = {
            "issuer": issuer,
            "authorization_endpoint": f"{issuer}/auth",
            "token_endpoint": f"{issuer}/token",
            "userinfo_endpoint": f"{issuer}/me",
            "jwks_uri": f"{issuer}/jwks",
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
            **overrides,
        }
        return issuer


@pytest.fixture
def discovery() -> Iterator[DiscoveryServer]:
    server_state = DiscoveryServer(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            name, _, rest = self.path.strip("/").partition("/")
            document = server_state.documents.get(name)
            if document is None or rest != ".well-known/openid-configuration":
                self.send_response(404)
                self.end_headers()
                return
            body = json.dumps(document).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server_state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield server_state
    httpd.shutdown()
    httpd.server_close()
