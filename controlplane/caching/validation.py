"""The rules a cache request must pass: sizes per storage tier, mounts, policies, schedules.

Plain functions that add field errors (``{"mounts.0.uri": [msg]}``) to a dict; services raise
them as one 422. The API's policy list (``[{"type": "preload", "path": …}, …]``) is mapped to the
contract's :class:`~computeplane_agent.contract.CachePolicies` here, and back for display.
"""

from __future__ import annotations

import re
from typing import Any

from computeplane_agent import contract
from computeplane_agent.instance_types import InstanceType

Errors = dict[str, list[str]]

MEDIUMS = ("mem", "ssd", "nvme")
# What a cache's workers run on when the request names no instance type: memory-heavy for the
# mem tier, general purpose with an EBS volume for ssd, instance-store NVMe for nvme.
DEFAULT_INSTANCE_TYPES = {"mem": "r6i.2xlarge", "ssd": "m6i.2xlarge", "nvme": "i4i.2xlarge"}
MAX_WORKERS = contract.MAX_CACHE_WORKERS
# The mem tier is a ramdisk beside the kubelet, the OS and the Alluxio worker's own JVM: keep a
# quarter of the node's memory (at least 4 GiB) for them.
MEM_HEADROOM_FRACTION = 0.25
MEM_HEADROOM_MIN_GB = 4
# An ssd tier is one EBS gp3 volume per worker; gp3 volumes go up to 16 TiB.
SSD_MAX_GB = 16 * 1024
# Local NVMe instance storage (GB) of a ``.large`` of each family that has it; it doubles with
# each size (i4i.2xlarge: 4 x 468 = 1872 of its 1875 GB). Other families have none.
NVME_GB_PER_LARGE = {"i4i": 468, "i3": 475, "r6id": 118, "m6id": 118, "r5d": 75}

_S3_URI = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^\s?#]*)?$")
_HDFS_URI = re.compile(r"^hdfs://[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?:([0-9]{1,5})(/[^\s?#]*)?$")
_CACHE_PATH = re.compile(r"^(/[A-Za-z0-9_][A-Za-z0-9._-]*)+$")
POLICY_TYPES = ("preload", "pin", "ttl", "write_back")
_POLICY_KEYS = {
    "preload": {"type", "path", "schedule"},
    "pin": {"type", "path"},
    "ttl": {"type", "path", "seconds"},
    "write_back": {"type"},
}
TTL_MIN_SECONDS = 60
TTL_MAX_SECONDS = 365 * 24 * 3600


# --- sizes ----------------------------------------------------------------------------------


def nvme_capacity_gb(itype: InstanceType) -> int:
    per_large = NVME_GB_PER_LARGE.get(itype.name.split(".")[0], 0)
    return per_large * itype.vcpu // 2


def mem_capacity_gb(itype: InstanceType) -> int:
    memory_gb = itype.memory_mib // 1024
    headroom = max(MEM_HEADROOM_MIN_GB, int(memory_gb * MEM_HEADROOM_FRACTION))
    return max(memory_gb - headroom, 0)


def max_size_gb(medium: str, itype: InstanceType) -> int:
    if medium == "mem":
        return mem_capacity_gb(itype)
    if medium == "nvme":
        return nvme_capacity_gb(itype)
    return SSD_MAX_GB


def check_workers(workers: int, errors: Errors) -> None:
    if not 1 <= workers <= MAX_WORKERS:
        errors["workers"] = [f"Between 1 and {MAX_WORKERS}."]


def check_size(medium: str, itype: InstanceType, size_gb: int, errors: Errors) -> None:
    limit = max_size_gb(medium, itype)
    if medium == "nvme" and limit == 0:
        families = ", ".join(sorted(NVME_GB_PER_LARGE))
        errors["worker_instance_type"] = [
            f"{itype.name} has no local NVMe storage; use one of the families {families}."
        ]
    elif not 1 <= size_gb <= limit:
        why = {
            "mem": f"{itype.name} has {itype.memory_mib // 1024} GiB of memory and keeps "
            f"{itype.memory_mib // 1024 - limit} GiB for the system and the worker process",
            "nvme": f"{itype.name} has {limit} GB of local NVMe storage",
            "ssd": f"an EBS volume holds at most {SSD_MAX_GB} GB",
        }[medium]
        errors["size_gb_per_worker"] = [f"Between 1 and {limit} for {medium}: {why}."]


# --- mounts ---------------------------------------------------------------------------------


def _has_credentials(uri: str) -> bool:
    authority = uri.split("://", 1)[-1].split("/", 1)[0]
    return "@" in authority


def check_uri(uri: str) -> str | None:
    """Why ``uri`` cannot be mounted, or None."""
    if _has_credentials(uri):
        return (
            "Credentials do not belong in a URI: the cache reads S3 with the compute plane's "
            "IAM role and HDFS with its own Kerberos/site configuration."
        )
    if uri.startswith("s3://"):
        if not _S3_URI.match(uri):
            return "Use s3://<bucket>/<prefix> with a valid bucket name (no query string)."
        return None
    if uri.startswith("hdfs://"):
        match = _HDFS_URI.match(uri)
        if not match:
            return "Use hdfs://<namenode-host>:<port>/<path> (no query string)."
        if not 1 <= int(match.group(2)) <= 65535:
            return "The port must be between 1 and 65535."
        return None
    return "Only s3:// and hdfs:// URIs can be mounted."


def _nested(a: str, b: str) -> bool:
    return a == b or b.startswith(a + "/") or a.startswith(b + "/")


def check_mounts(mounts: list[dict[str, str]], errors: Errors) -> None:
    if not mounts:
        errors["mounts"] = ["Mount at least one s3:// or hdfs:// location."]
        return
    if len(mounts) > contract.MAX_CACHE_MOUNTS:
        errors["mounts"] = [f"At most {contract.MAX_CACHE_MOUNTS} mounts."]
        return
    seen: list[str] = []
    for i, mount in enumerate(mounts):
        path, uri = mount["path"], mount["uri"]
        if not _CACHE_PATH.match(path) or any(p in ("..", ".") for p in path.split("/")):
            errors[f"mounts.{i}.path"] = [
                "An absolute path below / such as /warehouse (letters, digits, . _ -)."
            ]
        elif any(_nested(path, other) for other in seen):
            clash = next(other for other in seen if _nested(path, other))
            errors[f"mounts.{i}.path"] = [
                f"Overlaps the mount at {clash}; mount points cannot nest."
            ]
        else:
            seen.append(path)
        problem = check_uri(uri)
        if problem:
            errors[f"mounts.{i}.uri"] = [problem]


# --- cron -----------------------------------------------------------------------------------

_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTHS = {m: i + 1 for i, m in enumerate(_MONTH_NAMES)}
_DAYS = {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
# (name, low, high, names) per field of a five-field schedule (Kubernetes CronJob syntax).
_CRON_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
)


def _cron_value(text: str, low: int, high: int, names: dict[str, int]) -> int | None:
    if text.lower() in names:
        return names[text.lower()]
    if text.isdigit() and low <= int(text) <= high:
        return int(text)
    return None


def _cron_item(item: str, low: int, high: int, names: dict[str, int]) -> bool:
    base, _, step = item.partition("/")
    if step and not (step.isdigit() and 1 <= int(step) <= high):
        return False
    if base == "*":
        return True
    first, _, last = base.partition("-")
    a = _cron_value(first, low, high, names)
    if a is None:
        return False
    if not last:
        return True
    b = _cron_value(last, low, high, names)
    return b is not None and a <= b


def cron_problem(schedule: str) -> str | None:
    """Why ``schedule`` is not a five-field cron expression, or None."""
    fields = schedule.split()
    if len(fields) != 5 or schedule != " ".join(fields):
        return "Five fields separated by single spaces: minute hour day-of-month month weekday."
    for text, (name, low, high, names) in zip(fields, _CRON_FIELDS, strict=True):
        if not all(item and _cron_item(item, low, high, names) for item in text.split(",")):
            return f"Invalid {name} field {text!r} (allowed {low}-{high}, *, ranges, lists, /n)."
    return None


# --- policies -------------------------------------------------------------------------------


def _under_a_mount(path: str, mounts: list[dict[str, str]]) -> bool:
    return any(path == m["path"] or path.startswith(m["path"] + "/") for m in mounts)


def _check_path(
    item: dict[str, Any], key: str, mounts: list[dict[str, str]], errors: Errors
) -> str | None:
    path = item.get("path")
    if not isinstance(path, str) or not _CACHE_PATH.match(path):
        errors[f"{key}.path"] = ["An absolute cache path such as /warehouse/hot."]
        return None
    if not _under_a_mount(path, mounts):
        errors[f"{key}.path"] = [f"{path} is under none of the cache's mounts."]
        return None
    return path


def parse_policies(
    items: list[Any], mounts: list[dict[str, str]], errors: Errors
) -> contract.CachePolicies:
    """The API's policy list as the contract's CachePolicies (field errors added to ``errors``)."""
    preload: list[contract.PreloadPolicy] = []
    pin: list[str] = []
    ttl: list[contract.TtlPolicy] = []
    write_back = False
    seen: set[tuple[str, str]] = set()
    for i, item in enumerate(items):
        key = f"policies.{i}"
        kind = item.get("type") if isinstance(item, dict) else None
        if kind not in POLICY_TYPES:
            errors[f"{key}.type"] = [f"One of {', '.join(POLICY_TYPES)}."]
            continue
        assert isinstance(item, dict)
        unknown = sorted(set(item) - _POLICY_KEYS[kind])
        if unknown:
            allowed = ", ".join(sorted(_POLICY_KEYS[kind]))
            errors[key] = [f"Unknown keys {unknown} for a {kind} policy (allowed: {allowed})."]
            continue
        if kind == "write_back":
            if write_back:
                errors[key] = ["write_back is given twice."]
            write_back = True
            continue
        path = _check_path(item, key, mounts, errors)
        if path is None:
            continue
        if (kind, path) in seen:
            errors[f"{key}.path"] = [f"A {kind} policy for {path} is given twice."]
            continue
        seen.add((kind, path))
        if kind == "pin":
            pin.append(path)
        elif kind == "preload":
            schedule = item.get("schedule")
            if schedule is not None:
                problem = cron_problem(schedule) if isinstance(schedule, str) else "A string."
                if problem:
                    errors[f"{key}.schedule"] = [problem]
                    continue
            preload.append(contract.PreloadPolicy(path=path, schedule=schedule))
        else:
            seconds = item.get("seconds")
            if not (
                isinstance(seconds, int)
                and not isinstance(seconds, bool)
                and TTL_MIN_SECONDS <= seconds <= TTL_MAX_SECONDS
            ):
                errors[f"{key}.seconds"] = [
                    f"Whole seconds between {TTL_MIN_SECONDS} and {TTL_MAX_SECONDS} (a year)."
                ]
                continue
            ttl.append(contract.TtlPolicy(path=path, seconds=seconds))
    for kind, found in (("preload", preload), ("pin", pin), ("ttl", ttl)):
        if len(found) > contract.MAX_POLICY_PATHS:
            errors["policies"] = [f"At most {contract.MAX_POLICY_PATHS} {kind} policies."]
    if errors:
        return contract.CachePolicies()
    return contract.CachePolicies(preload=preload, pin=pin, ttl=ttl, write_back=write_back)


def policies_as_list(stored: dict[str, Any]) -> list[dict[str, Any]]:
    """The stored CachePolicies as the API's policy list (the order policies are grouped in)."""
    policies = contract.CachePolicies.model_validate(stored or {})
    items: list[dict[str, Any]] = []
    for preload in policies.preload:
        item: dict[str, Any] = {"type": "preload", "path": preload.path}
        if preload.schedule:
            item["schedule"] = preload.schedule
        items.append(item)
    items.extend({"type": "pin", "path": path} for path in policies.pin)
    items.extend({"type": "ttl", "path": t.path, "seconds": t.seconds} for t in policies.ttl)
    if policies.write_back:
        items.append({"type": "write_back"})
    return items
