"""Metastores, caches and catalogs as the agent renders and applies them: valid manifests, secrets
only in Secrets, Trino catalog changes without restarts, PrestoDB changes as rolling restarts."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from computeplane_agent.agent import Agent
from computeplane_agent.contract import DesiredState
from computeplane_agent.render import render_cache, render_desired_state, render_metastore
from computeplane_agent.secrets import MemorySecretResolver
from computeplane_agent.targets.base import CacheUsage
from computeplane_agent.targets.directory import DirectoryTarget
from computeplane_agent.targets.memory import MemoryTarget
from tests.agent.factories import (
    CACHE_ID,
    DB_SECRET_ARN,
    HIVE_CATALOG_ID,
    PG_CATALOG_ID,
    PG_SECRET_ARN,
    cache_spec,
    cluster_spec,
    desired_state,
    metastore_spec,
)
from tests.agent.test_render import KUBERNETES_VERSIONS

PG_PASSWORD = "pl4nted-pg-Secret-value"
DB_PASSWORD = "pl4nted-rds-Secret-value"
SECRETS = {PG_SECRET_ARN: PG_PASSWORD, DB_SECRET_ARN: json.dumps({"password": DB_PASSWORD})}
PRESTO = {"engine": "presto", "version": "0.292"}
# _state numbers its clusters from 0: the first is Trino unless the test says otherwise.
TRINO_ID = "cl_01hv0000000000000000000000"


def _state(
    version: int = 1, engines: tuple[dict[str, Any], ...] = ({},), **extra: Any
) -> DesiredState:
    clusters = [
        cluster_spec(id=f"cl_01hv00000000000000000000{i:02d}", node_group=f"ng-{i}", **engine)
        for i, engine in enumerate(engines)
    ]
    base: dict[str, Any] = {"metastores": [metastore_spec()], "caches": [cache_spec()]}
    return desired_state(version, clusters=clusters, **{**base, **extra})


def _agent(target: Any, resolver: MemorySecretResolver | None = None) -> Agent:
    return Agent(
        client=None,  # type: ignore[arg-type]  # reconcile and observe never call it
        target=target,
        agent_id="agt_test",
        resolver=resolver or MemorySecretResolver(SECRETS),
    )


def _apply(agent: Agent, state: DesiredState) -> None:
    agent.reconcile(state)
    agent.state.applied = state
    agent.catalogs.sync(state, agent.state.secrets)


def _objects(target: MemoryTarget, kind: str) -> dict[str, dict[str, Any]]:
    return {ref.name: obj for ref, obj in target.objects.items() if ref.kind == kind}


def _templates(target: MemoryTarget) -> dict[str, Any]:
    return {name: d["spec"]["template"] for name, d in _objects(target, "Deployment").items()}


def _with_catalog_change(state: DesiredState, version: int) -> DesiredState:
    pg = next(c for c in state.catalogs if c.id == PG_CATALOG_ID)
    changed = pg.model_copy(
        update={
            "version": pg.version + 1,
            "properties": {**pg.properties, "connection-url": "jdbc:postgresql://db2:5432/app"},
        }
    )
    catalogs = [changed if c.id == PG_CATALOG_ID else c for c in state.catalogs]
    return state.model_copy(update={"version": version, "catalogs": catalogs})


# --- manifests ----------------------------------------------------------------------------------


@pytest.mark.parametrize("medium", ["mem", "ssd", "nvme"])
def test_metastore_and_cache_manifests_pass_strict_validation(medium: str) -> None:
    objects = render_metastore(metastore_spec(version="3.1.3")) + render_metastore(metastore_spec())
    objects += render_cache(cache_spec(medium=medium), registry_mirror="mirror.example.com/hub")
    target = MemoryTarget()
    _apply(_agent(target), _state(engines=({}, PRESTO), caches=[cache_spec(medium=medium)]))
    objects += [o for ref, o in target.objects.items() if ref.kind == "Secret"]
    objects += render_desired_state(
        _state(engines=({"cache": CACHE_ID}, {**PRESTO, "cache": CACHE_ID}))
    )
    kinds = {o["kind"] for o in objects}
    assert {"StatefulSet", "Job", "CronJob", "Secret", "Deployment", "NetworkPolicy"} <= kinds
    for version in KUBERNETES_VERSIONS:
        for obj in objects:
            kubernetes_validate.validate(obj, version, strict=True)


def test_metastore_runs_on_system_nodes_with_its_password_from_a_secret() -> None:
    objects = {
        o["kind"] + "/" + o["metadata"]["name"]: o for o in render_metastore(metastore_spec())
    }
    name = "lp-ms-01hv0000000000000000000001"
    service = objects[f"Service/{name}"]
    assert service["spec"]["ports"][0]["port"] == 9083
    pod = objects[f"Deployment/{name}"]["spec"]["template"]["spec"]
    # Cluster and cache node groups are tainted; the untainted system node group is labelled so.
    assert pod["nodeSelector"] == {"lakeplane.io/node-group": "system"}
    assert "tolerations" not in pod
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert env["SERVICE_NAME"]["value"] == "metastore"
    assert env["HIVE_DB_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == f"{name}-db"
    site = objects[f"ConfigMap/{name}-config"]["data"]["metastore-site.xml"]
    assert "jdbc:postgresql://lp-ms-main.abc123.eu-west-1.rds.amazonaws.com:5432/metastore" in site
    assert "s3a://lp-plane-bucket/warehouse" in site
    job = next(o for k, o in objects.items() if k.startswith("Job/"))
    assert "-initOrUpgradeSchema" in job["spec"]["template"]["spec"]["containers"][0]["command"][2]
    assert job["spec"]["template"]["spec"]["nodeSelector"] == {"lakeplane.io/node-group": "system"}
    policy = objects[f"NetworkPolicy/{name}"]["spec"]["ingress"][0]
    assert policy["ports"] == [{"protocol": "TCP", "port": 9083}]
    assert policy["from"][0]["podSelector"]["matchExpressions"][0]["key"] == "lakeplane.io/cluster"
    old = render_metastore(metastore_spec(version="3.1.3"))
    script = next(o for o in old if o["kind"] == "Job")["spec"]["template"]["spec"]
    assert "-initSchema" in script["containers"][0]["command"][2]


def test_alluxio_workers_are_pinned_to_the_cache_node_group_with_their_tier() -> None:
    objects = {o["kind"] + "/" + o["metadata"]["name"]: o for o in render_cache(cache_spec())}
    prefix = "lp-cache-01hv0000000000000000000001"
    worker = objects[f"StatefulSet/{prefix}-worker"]
    pod = worker["spec"]["template"]["spec"]
    assert worker["spec"]["replicas"] == 3
    assert pod["nodeSelector"] == {"lakeplane.io/node-group": "lp-cache-01hv0000000000000000000001"}
    assert pod["tolerations"][0]["value"] == "lp-cache-01hv0000000000000000000001"
    tier = next(v for v in pod["volumes"] if v["name"] == "tier")
    assert tier["emptyDir"] == {"medium": "Memory", "sizeLimit": "32Gi"}
    master = objects[f"StatefulSet/{prefix}-master"]
    assert master["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "journal"
    assert master["spec"]["template"]["spec"]["nodeSelector"] == {
        "lakeplane.io/node-group": "system"
    }
    site = objects[f"ConfigMap/{prefix}-config"]["data"]["alluxio-site.properties"]
    assert "alluxio.user.file.writetype.default=ASYNC_THROUGH" in site
    assert "alluxio.worker.tieredstore.level0.dirs.quota=32GB" in site
    jobs = [o for k, o in objects.items() if k.startswith(("Job/", "CronJob/"))]
    scripts = " ".join(json.dumps(j) for j in jobs)
    assert "alluxio fs mount" in scripts
    assert "s3://customer-lake/data" in scripts
    assert "hdfs://namenode.corp:8020/warehouse" in scripts
    assert "alluxio fs pin '/lake/dims'" in scripts
    assert "setTtl --action free '/lake/tmp' 3600000" in scripts
    assert "distributedLoad '/lake/hot'" in scripts
    cron = [j for j in jobs if j["kind"] == "CronJob"]
    assert [c["spec"]["schedule"] for c in cron] == ["0 3 * * *"]
    ssd = render_cache(cache_spec(medium="ssd", policies={"write_back": False}))
    ssd_worker = next(
        o for o in ssd if o["kind"] == "StatefulSet" and "worker" in o["metadata"]["name"]
    )
    assert ssd_worker["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"] == {
        "storage": "32Gi"
    }
    ssd_site = next(o for o in ssd if o["kind"] == "ConfigMap")["data"]["alluxio-site.properties"]
    assert "writetype.default=CACHE_THROUGH" in ssd_site


def test_catalog_property_names_follow_the_engine() -> None:
    def catalog_file(engine: dict[str, Any], name: str) -> dict[str, str]:
        objects = render_desired_state(_state(engines=(engine,)))
        cm = next(o for o in objects if o["metadata"]["name"].endswith("-catalog"))
        return dict(line.split("=", 1) for line in cm["data"][name].splitlines())

    assert catalog_file(PRESTO, "hive.properties")["connector.name"] == "hive-hadoop2"
    assert catalog_file({}, "hive.properties")["connector.name"] == "hive"
    for engine in (PRESTO, {}):
        pg = catalog_file(engine, "pg.properties")
        assert pg["connection-password"] == "${ENV:CATALOG_PG_CONNECTION_PASSWORD}"


def test_clusters_with_a_cache_read_through_it() -> None:
    state = _state(engines=({"cache": CACHE_ID}, {**PRESTO, "cache": CACHE_ID}))
    objects = {o["metadata"]["name"]: o for o in render_desired_state(state)}
    trino = objects["lp-cl-01hv0000000000000000000000-catalog"]["data"]["hive.properties"]
    assert "fs.alluxio.enabled=true" in trino
    presto = objects["lp-cl-01hv0000000000000000000001-catalog"]["data"]["hive.properties"]
    assert "hive.s3-file-system-type=HADOOP_DEFAULT" in presto
    core = objects["lp-cl-01hv0000000000000000000001-cache-client"]["data"]["core-site.xml"]
    assert "alluxio.hadoop.ShimFileSystem" in core
    assert ":19998" in core
    client = objects["lp-cl-01hv0000000000000000000000-cache-client"]["data"]
    assert "alluxio.master.hostname=lp-cache-" in client["alluxio-site.properties"]
    # The PostgreSQL catalog is not file-based: it never goes through the cache.
    assert (
        "alluxio"
        not in objects["lp-cl-01hv0000000000000000000000-catalog"]["data"]["pg.properties"]
    )


# --- secrets ------------------------------------------------------------------------------------


def test_a_planted_secret_is_only_in_secrets(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    target = DirectoryTarget(tmp_path)
    agent = _agent(target)
    state = _state(engines=({}, PRESTO))
    _apply(agent, state)
    _apply(agent, _with_catalog_change(state, 2))
    agent.state.error = None
    agent._reject(3, "render_failed", f"something echoed {PG_PASSWORD}")
    report = json.dumps(
        [s.model_dump(mode="json") for s in agent.observe()]
        + [m.model_dump(mode="json") for m in agent.observe_metastores()]
        + [agent.state.error.model_dump(mode="json") if agent.state.error else {}]
    )
    assert PG_PASSWORD not in report
    assert DB_PASSWORD not in report
    assert PG_PASSWORD not in caplog.text
    assert DB_PASSWORD not in caplog.text
    holders = {
        path.relative_to(tmp_path).as_posix()
        for path in tmp_path.rglob("*")
        if path.is_file() and (PG_PASSWORD in path.read_text() or DB_PASSWORD in path.read_text())
    }
    assert holders == {
        "lakeplane-workloads/secret-lp-cl-01hv0000000000000000000000-catalog-secrets.yaml",
        "lakeplane-workloads/secret-lp-cl-01hv0000000000000000000001-catalog-secrets.yaml",
        "lakeplane-workloads/secret-lp-ms-01hv0000000000000000000001-db.yaml",
    }
    catalog_map = (
        tmp_path / "lakeplane-workloads/configmap-lp-cl-01hv0000000000000000000001-catalog.yaml"
    )
    pg_file = yaml.safe_load(catalog_map.read_text())["data"]["pg.properties"]
    assert "connection-password=${ENV:CATALOG_PG_CONNECTION_PASSWORD}" in pg_file
    statements = (tmp_path / "_catalog-statements").rglob("*.sql")
    text = "".join(p.read_text() for p in statements)
    assert "CREATE CATALOG" in text
    assert PG_PASSWORD not in text


def test_an_unreadable_secret_fails_only_its_catalog(caplog: pytest.LogCaptureFixture) -> None:
    target = MemoryTarget()
    resolver = MemorySecretResolver({DB_SECRET_ARN: json.dumps({"password": DB_PASSWORD})})
    agent = _agent(target, resolver)
    state = _state(engines=({}, PRESTO))
    _apply(agent, state)
    for status in agent.observe():
        by_id = {c.id: c for c in status.catalogs}
        assert by_id[HIVE_CATALOG_ID].status == "live"
        assert by_id[PG_CATALOG_ID].status == "failed"
        assert PG_SECRET_ARN in (by_id[PG_CATALOG_ID].message or "")
    # Left out of the clusters, so a missing variable cannot break their start-up.
    catalogs = _objects(target, "ConfigMap")["lp-cl-01hv0000000000000000000001-catalog"]["data"]
    assert sorted(catalogs) == ["hive.properties"]
    assert not [s for s in target.statements["cl_01hv0000000000000000000000"] if '"pg"' in s]
    assert "lp-ms-01hv0000000000000000000001-db" in _objects(target, "Secret")
    [metastore] = agent.observe_metastores()
    assert metastore.phase == "running"
    assert metastore.schema_ready


# --- propagation --------------------------------------------------------------------------------


def test_a_catalog_change_is_statements_on_trino_and_a_rolling_restart_on_presto() -> None:
    target = MemoryTarget()
    agent = _agent(target)
    state = _state(engines=({}, PRESTO))
    _apply(agent, state)
    trino_id, presto_id = "cl_01hv0000000000000000000000", "cl_01hv0000000000000000000001"
    first = list(target.statements[trino_id])
    assert any(s.startswith('CREATE CATALOG "pg" USING postgresql') for s in first)
    assert "'${ENV:CATALOG_PG_CONNECTION_PASSWORD}'" in " ".join(first)
    assert presto_id not in target.statements
    before = _templates(target)

    _apply(agent, _with_catalog_change(state, 2))
    after = _templates(target)
    trino_prefix, presto_prefix = (
        "lp-cl-01hv0000000000000000000000",
        "lp-cl-01hv0000000000000000000001",
    )
    for component in ("coordinator", "worker"):
        assert after[f"{trino_prefix}-{component}"] == before[f"{trino_prefix}-{component}"]
        old = before[f"{presto_prefix}-{component}"]["metadata"]["annotations"]
        new = after[f"{presto_prefix}-{component}"]["metadata"]["annotations"]
        assert new["lakeplane.io/config-checksum"] != old["lakeplane.io/config-checksum"]
    # The rolling update stays drain-aware.
    worker = _objects(target, "Deployment")[f"{presto_prefix}-worker"]
    assert worker["spec"]["strategy"]["rollingUpdate"]["maxSurge"] == 0
    assert "preStop" in worker["spec"]["template"]["spec"]["containers"][0]["lifecycle"]

    second = target.statements[trino_id][len(first) :]
    assert second == [
        'DROP CATALOG IF EXISTS "pg"',
        next(s for s in second if s.startswith("CREATE")),
    ]
    assert "jdbc:postgresql://db2:5432/app" in second[1]
    for status in agent.observe():
        pg = next(c for c in status.catalogs if c.id == PG_CATALOG_ID)
        assert (pg.version, pg.status) == (2, "live")

    # Detaching drops the catalog on Trino, again without touching a pod template. (Only a
    # change in the set of secret variables restarts Trino: environment is read at start.)
    detached = _with_catalog_change(state, 3).model_copy(
        update={
            "clusters": [c.model_copy(update={"catalogs": [PG_CATALOG_ID]}) for c in state.clusters]
        }
    )
    _apply(agent, detached)
    assert target.statements[trino_id][-1] == 'DROP CATALOG IF EXISTS "hive"'
    assert _templates(target)[f"{trino_prefix}-worker"] == before[f"{trino_prefix}-worker"]


def test_trino_catalogs_wait_for_the_coordinator_and_report_refusals() -> None:
    target = MemoryTarget()
    agent = _agent(target)
    state = _state()
    agent.reconcile(state)
    agent.state.applied = state
    coordinator = next(
        r for r in target.objects if r.name.endswith("-coordinator") and r.kind == "Deployment"
    )
    target.unready[coordinator] = 0
    agent.catalogs.sync(state, agent.state.secrets)
    assert target.statements == {}
    assert {c.status for c in agent.observe()[0].catalogs} == {"pending"}
    del target.unready[coordinator]
    target.refuse_statements.add(TRINO_ID)
    agent.catalogs.sync(state, agent.state.secrets)
    assert {c.status for c in agent.observe()[0].catalogs} == {"failed"}
    target.refuse_statements.clear()
    agent.catalogs.sync(state, agent.state.secrets)
    assert {(c.version, c.status) for c in agent.observe()[0].catalogs} == {(1, "live")}


def test_caches_outlive_their_clusters_and_report_usage() -> None:
    target = MemoryTarget()
    agent = _agent(target)
    state = _state(engines=({"cache": CACHE_ID}, {**PRESTO, "cache": CACHE_ID}))
    _apply(agent, state)
    cache_objects = {
        r for r, o in target.objects.items() if o["metadata"]["labels"].get("lakeplane.io/cache")
    }
    assert len(cache_objects) >= 8
    [status] = agent.observe_caches()
    assert status.master_ready
    assert (status.workers_ready, status.workers_desired) == (3, 3)
    assert (status.bytes_used, status.bytes_capacity) == (0, 3 * 32 * 1024**3)

    stopped = [c.model_copy(update={"state": "stopped"}) for c in state.clusters]
    _apply(agent, state.model_copy(update={"version": 2, "clusters": stopped}))
    _apply(agent, state.model_copy(update={"version": 3, "clusters": []}))
    assert cache_objects <= set(target.objects)
    assert not [r for r in target.objects if "lp-cl-" in r.name]
    metastore_objects = [r for r in target.objects if r.name.startswith("lp-ms-")]
    assert metastore_objects

    target.usage[CACHE_ID] = CacheUsage(bytes_used=5, bytes_capacity=10, hit_ratio=0.75)
    [status] = agent.observe_caches()
    assert (status.bytes_used, status.bytes_capacity, status.hit_ratio) == (5, 10, 0.75)


def test_usage_names_the_role_of_every_node_that_ran() -> None:
    from computeplane_agent.install import SYSTEM_INSTANCE_TYPE

    target = MemoryTarget()
    agent = _agent(target)
    state = _state(engines=({"cache": CACHE_ID}, {**PRESTO, "cache": CACHE_ID}))
    _apply(agent, state)
    samples = {
        (s.role, s.subject_id, s.instance_type): s.nodes
        for s in agent._usage_samples(state, seconds=60)
    }
    [cache] = state.caches
    [metastore] = state.metastores
    expected = {("cache", cache.id, cache.worker_instance_type): 3}
    expected[("metastore", metastore.id, SYSTEM_INSTANCE_TYPE)] = metastore.replicas
    for cluster in state.clusters:
        expected[("coordinator", cluster.id, cluster.coordinator.instance_type)] = 1
        expected[("worker", cluster.id, cluster.workers.instance_type)] = cluster.workers.replicas
    assert samples == expected


def test_end_to_end_with_the_directory_target(tmp_path: Path) -> None:
    target = DirectoryTarget(tmp_path)
    agent = _agent(target)
    state = _state(engines=({"cache": CACHE_ID}, {**PRESTO, "cache": CACHE_ID}))
    _apply(agent, state)
    assert agent.reconcile(state).applied == 0  # a second pass writes nothing
    files = {p.name for p in (tmp_path / "lakeplane-workloads").glob("*.yaml")}
    assert "statefulset-lp-cache-01hv0000000000000000000001-worker.yaml" in files
    assert "deployment-lp-ms-01hv0000000000000000000001.yaml" in files
    assert [m.phase for m in agent.observe_metastores()] == ["running"]
    assert [c.phase for c in agent.observe_caches()] == ["running"]
    assert {c.status for s in agent.observe() for c in s.catalogs} == {"live"}
    sql = (tmp_path / "_catalog-statements" / "cl_01hv0000000000000000000000.sql").read_text()
    assert 'CREATE CATALOG "hive" USING hive' in sql
    assert "fs.alluxio.enabled" in sql


# --- what the cache serves, per engine (docs/caches.md) -----------------------------------------


def test_trino_catalogs_with_a_cache_cache_every_location_on_the_nodes() -> None:
    # Trino binds its Alluxio file system to alluxio:// only, so s3:// tables are served by its
    # file system cache; each cached catalog has its own directory on the pods' fs-cache volume.
    from computeplane_agent.render.catalogs import TRINO_FS_CACHE_DIR, create_catalog_statement

    state = _state(engines=({"cache": CACHE_ID}, {"cache": None}, {**PRESTO, "cache": CACHE_ID}))
    rendered = render_desired_state(state)
    objects = {o["metadata"]["name"]: o for o in rendered if o["kind"] == "ConfigMap"}
    objects |= {o["metadata"]["name"]: o for o in rendered if o["kind"] == "Deployment"}
    prefixes = [f"lp-cl-01hv00000000000000000000{i:02d}" for i in range(3)]
    cached = dict(
        line.split("=", 1)
        for line in objects[f"{prefixes[0]}-catalog"]["data"]["hive.properties"].splitlines()
        if "=" in line
    )
    assert cached["fs.alluxio.enabled"] == "true"
    assert cached["fs.cache.enabled"] == "true"
    assert cached["fs.cache.directories"] == f"{TRINO_FS_CACHE_DIR}/hive"
    assert cached["fs.cache.max-disk-usage-percentages"] == "80"  # the only cached catalog
    assert "fs.cache" not in objects[f"{prefixes[0]}-catalog"]["data"]["pg.properties"]
    assert "fs.cache" not in objects[f"{prefixes[1]}-catalog"]["data"]["hive.properties"]
    assert "fs.cache" not in objects[f"{prefixes[2]}-catalog"]["data"]["hive.properties"]

    def cache_mounts(prefix: str) -> list[str]:
        spec = objects[f"{prefix}-worker"]["spec"]["template"]["spec"]
        volumes = {v["name"] for v in spec["volumes"]}
        return [
            m["mountPath"]
            for m in spec["containers"][0]["volumeMounts"]
            if m["name"] == "fs-cache" and "fs-cache" in volumes
        ]

    assert cache_mounts(prefixes[0]) == [TRINO_FS_CACHE_DIR]
    assert cache_mounts(prefixes[1]) == []  # no cache attached
    assert cache_mounts(prefixes[2]) == []  # PrestoDB reads through the shared cache instead
    coordinator = objects[f"{prefixes[0]}-coordinator"]["spec"]["template"]["spec"]
    assert any(m["name"] == "fs-cache" for m in coordinator["containers"][0]["volumeMounts"])

    # The statement the agent runs carries the same, and the disk is shared out equally.
    hive = next(c for c in state.catalogs if c.id == HIVE_CATALOG_ID)
    twin = hive.model_copy(update={"id": "cat_01hv0000000000000000000099", "name": "lake2"})
    statement = create_catalog_statement(hive, state.caches[0], cached_catalogs=2)
    assert "\"fs.cache.max-disk-usage-percentages\" = '40'" in statement
    assert f"\"fs.cache.directories\" = '{TRINO_FS_CACHE_DIR}/hive'" in statement
    assert f"{TRINO_FS_CACHE_DIR}/lake2'" in create_catalog_statement(twin, state.caches[0], 2)


def test_a_refused_trino_catalog_change_puts_the_previous_version_back_at_once() -> None:
    target = MemoryTarget()
    agent = _agent(target)
    state = _state()
    _apply(agent, state)
    ran = len(target.statements[TRINO_ID])
    target.refuse_containing.add("jdbc:postgresql://db2")

    _apply(agent, _with_catalog_change(state, 2))
    after = target.statements[TRINO_ID][ran:]
    # drop, the refused create (not run), then the version that worked, back at once; the
    # unchanged hive catalog is never touched
    assert after[0] == 'DROP CATALOG IF EXISTS "pg"'
    assert after[1] == 'DROP CATALOG IF EXISTS "pg"'
    assert after[2].startswith('CREATE CATALOG "pg"')
    assert "jdbc:postgresql://db:5432/app" in after[2]
    assert len(after) == 3
    pg = next(c for c in agent.observe()[0].catalogs if c.id == PG_CATALOG_ID)
    assert (pg.version, pg.status) == (1, "failed")
    assert "invalid" in (pg.message or "")

    # Later passes do not drop the serving catalog again for the same refused change.
    ran = len(target.statements[TRINO_ID])
    agent.catalogs.sync(_with_catalog_change(state, 2), agent.state.secrets)
    assert target.statements[TRINO_ID][ran:] == []

    # The next version goes through (the engine side was fixed): drop and create, back to
    # back, and it is live.
    target.refuse_containing.clear()
    fixed = _with_catalog_change(_with_catalog_change(state, 2), 3)
    _apply(agent, fixed)
    last = target.statements[TRINO_ID][ran:]
    assert [s.split(" (")[0].split(" WITH")[0] for s in last] == [
        'DROP CATALOG IF EXISTS "pg"',
        'CREATE CATALOG "pg" USING postgresql',
    ]
    pg = next(c for c in agent.observe()[0].catalogs if c.id == PG_CATALOG_ID)
    assert (pg.version, pg.status) == (3, "live")
