"""Data access rules: one model, one evaluation order, and each engine's file-based rules.

A rule set is an ordered list of rules. Each rule names **who** (users and/or groups; neither
means everyone), **what** (``catalog.schema.table``, each part a name or ``*``) and grants
(``allow``) privileges — ``read`` (SELECT), ``write`` (INSERT, UPDATE, DELETE) and ``ownership``
(create/drop/alter; schema ownership included) — or refuses everything (``deny``).

Evaluation, stated once (docs/access-rules.md repeats it for users): rules are read **from the
top**; the **first** rule whose principals match the user and whose pattern matches the table
decides. An ``allow`` rule grants exactly its privileges (a privilege it does not list is
refused, even if a later rule would grant it); a ``deny`` rule refuses every privilege. No
matching rule: refused. This is Trino's own first-match order for table
rules, so the rendered ``rules.json`` decides exactly as :func:`decide` does — a property test
(tests/agent/test_access_rules.py) checks that with its own reading of the rendered file.

The control plane validates and decides with this module (the dry-run endpoint); the agent
renders it. Nothing here imports Django.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator


class ContractModel(BaseModel):
    # The agent contract's base (contract.py imports these models, so it cannot be imported here).
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=False)


Privilege = Literal["read", "write", "ownership"]
PRIVILEGES: tuple[Privilege, ...] = ("read", "write", "ownership")
# An engine identifier or `*`: what a catalog, schema or table part may be.
_PART = r"(\*|[a-z_][a-z0-9_]*)"
TablePattern = Annotated[
    str, StringConstraints(pattern=rf"^{_PART}\.{_PART}\.{_PART}$", max_length=200)
]
Principal = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.@-]{1,128}$", max_length=128)]
MAX_RULES = 200
# How often the engines re-read the rules file: a change is live within this, with no restart.
REFRESH_SECONDS = 10

# Each privilege as the engines name it in table rules.
_TRINO_PRIVILEGES: dict[Privilege, tuple[str, ...]] = {
    "read": ("SELECT",),
    "write": ("INSERT", "UPDATE", "DELETE"),
    "ownership": ("OWNERSHIP",),
}


class AccessRule(ContractModel):
    effect: Literal["allow", "deny"] = "allow"
    users: list[Principal] = Field(default_factory=list, max_length=100)
    groups: list[Principal] = Field(default_factory=list, max_length=100)
    table: TablePattern
    # What an ``allow`` rule grants; a ``deny`` rule lists none (it refuses everything).
    privileges: list[Privilege] = Field(default_factory=list, max_length=3)

    @model_validator(mode="after")
    def _privileges_fit_the_effect(self) -> AccessRule:
        if self.effect == "allow" and not self.privileges:
            raise ValueError("an allow rule grants at least one of read, write, ownership")
        if self.effect == "deny" and self.privileges:
            raise ValueError("a deny rule refuses every privilege: list none")
        return self

    @property
    def parts(self) -> tuple[str, str, str]:
        catalog, schema, table = self.table.split(".")
        return catalog, schema, table

    def matches_principal(self, user: str, groups: frozenset[str]) -> bool:
        if not self.users and not self.groups:
            return True
        return user in self.users or bool(groups & set(self.groups))

    def matches_table(self, catalog: str, schema: str, table: str) -> bool:
        return all(p in ("*", v) for p, v in zip(self.parts, (catalog, schema, table), strict=True))

    def granted(self) -> frozenset[Privilege]:
        return frozenset(self.privileges) if self.effect == "allow" else frozenset()


class AccessRules(ContractModel):
    """What the control plane sends for a cluster: the rule set, its version, and its name."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=63)]
    version: int = Field(ge=1)
    rules: list[AccessRule] = Field(min_length=1, max_length=MAX_RULES)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    rule: int | None  # index of the deciding rule; None: no rule matched
    reason: str


def decide(
    rules: list[AccessRule],
    *,
    user: str,
    groups: frozenset[str] = frozenset(),
    catalog: str,
    schema: str,
    table: str,
    privilege: Privilege,
) -> Decision:
    for index, rule in enumerate(rules):
        if rule.matches_principal(user, groups) and rule.matches_table(catalog, schema, table):
            allowed = privilege in rule.granted()
            verb = "grants" if allowed else "does not grant"
            return Decision(
                allowed,
                index,
                f"rule {index + 1} ({rule.effect} on {rule.table}) {verb} {privilege}",
            )
    return Decision(False, None, "no rule matches: refused")


def lockout(rules: list[AccessRule]) -> bool:
    """True when no rule grants anything to anyone: every user would be locked out."""
    return not any(rule.granted() for rule in rules)


def catalogs_named(rules: list[AccessRule]) -> set[str]:
    return {rule.parts[0] for rule in rules if rule.parts[0] != "*"}


# --- rendering ----------------------------------------------------------------------------------
def _regex(part: str) -> str:
    return ".*" if part == "*" else re.escape(part)


def _alternatives(names: list[str]) -> str:
    return "(" + "|".join(re.escape(n) for n in names) + ")"


def _principal_variants(rule: AccessRule) -> list[dict[str, str]]:
    """Trino matches ``user`` AND ``group``; a rule for users OR groups becomes one engine rule
    for the users and one for the groups, next to each other (same outcome, so first-match order
    is kept)."""
    if not rule.users and not rule.groups:
        return [{}]
    variants = []
    if rule.users:
        variants.append({"user": _alternatives(rule.users)})
    if rule.groups:
        variants.append({"group": _alternatives(rule.groups)})
    return variants


def _engine_privileges(rule: AccessRule) -> list[str]:
    return sorted(name for p in rule.granted() for name in _TRINO_PRIVILEGES[p])


def trino_rules(rules: list[AccessRule]) -> dict[str, object]:
    """Trino's system ``file`` access control document (docs: security/file-system-access-control).

    Catalog rules do not restrict (``all``): the table rules decide, as :func:`decide` does.
    Schema ownership follows the ``ownership`` privilege on a whole schema (``c.s.*``).
    """
    tables: list[dict[str, object]] = []
    schemas: list[dict[str, object]] = []
    for rule in rules:
        catalog, schema, table = rule.parts
        where = {"catalog": _regex(catalog), "schema": _regex(schema)}
        for who in _principal_variants(rule):
            tables.append(
                {**who, **where, "table": _regex(table), "privileges": _engine_privileges(rule)}
            )
            if table == "*":
                schemas.append({**who, **where, "owner": "ownership" in rule.granted()})
    return {"catalogs": [{"allow": "all"}], "schemas": schemas, "tables": tables}


def presto_hive_rules(rules: list[AccessRule], catalog: str) -> dict[str, object]:
    """PrestoDB's Hive connector ``file`` security document for one catalog: PrestoDB enforces
    table rules per Hive catalog (``hive.security=file``), matching users only — the control
    plane refuses group principals and non-Hive catalogs on PrestoDB clusters before this runs."""
    tables: list[dict[str, object]] = []
    schemas: list[dict[str, object]] = []
    for rule in rules:
        rule_catalog, schema, table = rule.parts
        if rule_catalog not in ("*", catalog):
            continue
        who = {"user": _alternatives(rule.users)} if rule.users else {}
        privileges = [p for p in _engine_privileges(rule) if p != "UPDATE"]  # PrestoDB lacks it
        tables.append(
            {**who, "schema": _regex(schema), "table": _regex(table), "privileges": privileges}
        )
        if table == "*":
            schemas.append(
                {**who, "schema": _regex(schema), "owner": "ownership" in rule.granted()}
            )
    return {"schemas": schemas, "tables": tables}


def presto_unsupported(rules: list[AccessRule], hive_catalogs: set[str]) -> list[str]:
    """Why a rule set cannot be enforced by PrestoDB as written (empty: it can)."""
    problems = []
    for index, rule in enumerate(rules):
        if rule.groups:
            problems.append(
                f"rule {index + 1}: PrestoDB's file-based access control matches users, not groups"
            )
        catalog = rule.parts[0]
        if catalog != "*" and catalog not in hive_catalogs:
            problems.append(
                f"rule {index + 1}: PrestoDB enforces table rules on Hive catalogs only, "
                f"and {catalog} is not one"
            )
    return problems


def dumps(document: dict[str, object]) -> str:
    return json.dumps(document, indent=2, sort_keys=True)


__all__ = [
    "PRIVILEGES",
    "REFRESH_SECONDS",
    "AccessRule",
    "AccessRules",
    "Decision",
    "catalogs_named",
    "decide",
    "dumps",
    "lockout",
    "presto_hive_rules",
    "presto_unsupported",
    "trino_rules",
]
