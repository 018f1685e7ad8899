"""Domain verification: the TXT records of a name, read over DNS (dnspython)."""

from __future__ import annotations

import dns.exception
import dns.resolver
from django.conf import settings

# A lookup happens inside the owner's "verify" request; a dead resolver must not hold it.
LOOKUP_TIMEOUT_S = 5.0


class LookupFailed(Exception):
    """The resolver did not answer (as opposed to answering "no such record")."""


def _resolver() -> dns.resolver.Resolver:
    nameserver = settings.LAKEPLANE_SSO_DNS_NAMESERVER
    if not nameserver:
        resolver = dns.resolver.Resolver()
    else:
        resolver = dns.resolver.Resolver(configure=False)
        host, _, port = nameserver.rpartition(":") if ":" in nameserver else (nameserver, "", "")
        resolver.nameservers = [host]
        if port:
            resolver.port = int(port)
    resolver.lifetime = LOOKUP_TIMEOUT_S
    return resolver


def txt_records(name: str) -> list[str]:
    """Every TXT string at ``name`` (a record's character-strings joined, RFC 7208 §3.3)."""
    try:
        answer = _resolver().resolve(name, "TXT")
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except dns.exception.DNSException as exc:
        raise LookupFailed(str(exc) or exc.__class__.__name__) from exc
    return [b"".join(rdata.strings).decode(errors="replace") for rdata in answer]
