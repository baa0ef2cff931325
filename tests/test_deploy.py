"""The deployment files refer to what the job really serves."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from feblam.metrics import REGISTRY

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


def served_metric_names() -> set[str]:
    import gateway.metrics  # noqa: F401 - the gateway's series are in the same registry

    names = set()
    for family in REGISTRY.collect():
        names.add(family.name)
        names.update(s.name for s in family.samples)
        if family.type == "counter":
            names.add(family.name + "_total")
        if family.type == "histogram":
            names.update(family.name + s for s in ("_bucket", "_sum", "_count"))
    return names


def test_every_alert_uses_metrics_the_job_serves() -> None:
    doc = yaml.safe_load((DEPLOY / "alerts.yml").read_text())
    rules = [r for g in doc["groups"] for r in g["rules"]]
    wanted = {
        "FeblamNoReads",
        "FeblamLagGrowing",
        "FeblamIndexStale",
        "FeblamSnapshotRejected",
        "FeblamSinkErrors",
        "FeblamNotReady",
    }
    assert wanted <= {r["alert"] for r in rules}
    served = served_metric_names()
    for rule in rules:
        used = set(re.findall(r"\b(feblam_[a-z_]+)", rule["expr"]))
        assert used and used <= served, (rule["alert"], used - served)
        assert rule["annotations"]["runbook"].startswith("docs/operations.md#")


def test_runbook_anchors_exist() -> None:
    doc = yaml.safe_load((DEPLOY / "alerts.yml").read_text())
    ops = (DEPLOY.parent / "docs" / "operations.md").read_text()
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", h.lower()).strip().replace(" ", "-")
        for h in re.findall(r"^#+ (.+)$", ops, flags=re.M)
    }
    for rule in (r for g in doc["groups"] for r in g["rules"]):
        assert rule["annotations"]["runbook"].split("#", 1)[1] in anchors, rule["alert"]


def test_the_manifest_probes_live_and_ready_and_is_scraped() -> None:
    docs = list(yaml.safe_load_all((DEPLOY / "feblam.yaml").read_text()))
    pod = next(d for d in docs if d["kind"] == "StatefulSet")["spec"]["template"]
    container = pod["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/live"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    config = next(d for d in docs if d["kind"] == "ConfigMap")["data"]["feblam.toml"]
    import tomllib

    from feblam.config import settings_from_dict

    assert settings_from_dict(tomllib.loads(config)).http.port == int(
        pod["metadata"]["annotations"]["prometheus.io/port"]
    )


def test_the_dockerfile_runs_as_a_user_and_notes_dev_shm() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^USER feblam$", text, flags=re.M)
    assert "/dev/shm" in text and "--shm-size" in text  # noqa: S108 - the text of a note, not a path used


def test_the_units_write_no_world_readable_file() -> None:
    for unit in ("feblam.service", "feblam-gateway.service"):
        assert re.search(r"^UMask=0027$", (DEPLOY / unit).read_text(), flags=re.M), unit
