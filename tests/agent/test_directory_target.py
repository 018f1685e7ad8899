"""The sandbox target writes one YAML file per object; valid objects become ready."""

from __future__ import annotations

from pathlib import Path

import yaml

from computeplane_agent.render import render_desired_state
from computeplane_agent.targets.base import ObjectRef, with_applied_hash
from computeplane_agent.targets.directory import DirectoryTarget
from tests.agent.factories import desired_state


def test_objects_are_files_and_valid_ones_become_ready(tmp_path: Path) -> None:
    target = DirectoryTarget(tmp_path)
    objects = [with_applied_hash(o) for o in render_desired_state(desired_state())]
    target.apply(objects)
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.yaml"))
    assert len(files) == len(objects)
    assert "lakeplane-workloads/deployment-lp-cl-01hv0000000000000000000001-worker.yaml" in files
    assert {m.ref for m in target.list_managed()} == {ObjectRef.of(o) for o in objects}
    worker = ObjectRef.of(next(o for o in objects if o["metadata"]["name"].endswith("-worker")))
    readiness = target.readiness(worker)
    assert (readiness.ready, readiness.ready_replicas) == (True, 3)

    # A manifest the API server would refuse is written but never ready.
    broken = yaml.safe_load(yaml.safe_dump(objects[4]))
    broken["spec"]["replicas"] = "many"
    target.apply([broken])
    readiness = target.readiness(ObjectRef.of(broken))
    assert readiness.exists
    assert not readiness.ready
    assert "invalid" in (readiness.message or "")

    target.delete(worker)
    target.delete(worker)
    assert not target.readiness(worker).exists
    assert not (tmp_path / "lakeplane-workloads" / f"deployment-{worker.name}.yaml").exists()
