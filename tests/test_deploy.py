"""The deployment files refer to what the job really serves."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from prometheus_client import CollectorRegistry

from feblam.metrics import GATEWAY_REGISTRY, REGISTRY

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


def served_metric_names(registry: CollectorRegistry) -> set[str]:
    import gateway.access
    import gateway.metrics  # noqa: F401 - the gateway's series, in its own registry

    names = set()
    for family in registry.collect():
        names.add(family.name)
        names.update(s.name for s in family.samples)
        if family.type == "counter":
            names.add(family.name + "_total")
        if family.type == "histogram":
            names.update(family.name + s for s in ("_bucket", "_sum", "_count"))
    return names


#: The scrape job of each process (docs/operations.md), and the registry its /metrics serves.
SERVED_BY = {"feblam": REGISTRY, "feblam-gateway": GATEWAY_REGISTRY}


def test_each_process_exports_only_its_own_metrics() -> None:
    job, gw = served_metric_names(REGISTRY), served_metric_names(GATEWAY_REGISTRY)
    assert "feblam_index_age_seconds" in job and "feblam_index_age_seconds" not in gw
    assert "feblam_reads_total" in job and "feblam_reads_total" not in gw
    assert "feblam_gateway_pages" in gw and not any(n.startswith("feblam_gateway_") for n in job)
    assert {"feblam_ready", "feblam_build_info", "feblam_consumer_lag"} <= job & gw


def test_every_alert_is_scoped_to_a_process_and_uses_metrics_it_serves() -> None:
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
    for rule in rules:
        selectors = re.findall(r"\b(feblam_[a-z_]+)(\{[^}]*\})?", rule["expr"])
        assert selectors, rule["alert"]
        jobs = {m.group(1) for _, sel in selectors if (m := re.search(r'job="([^"]+)"', sel))}
        assert len(jobs) == 1 and all('job="' in sel for _, sel in selectors), (rule["alert"], rule["expr"])
        (job,) = jobs
        used = {name for name, _ in selectors}
        assert used <= served_metric_names(SERVED_BY[job]), (rule["alert"], used - served_metric_names(SERVED_BY[job]))
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


def test_the_gateway_runs_as_an_active_and_a_standby_on_one_volume() -> None:
    """Two replicas on one recovery volume, routed by /ready (a standby is not ready); two units likewise."""
    import tomllib

    from feblam.config import settings_from_dict

    docs = list(yaml.safe_load_all((DEPLOY / "feblam-gateway.yaml").read_text()))
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]
    container = pod["spec"]["containers"][0]
    assert container["args"][0] == "gateway" and container["readinessProbe"]["httpGet"]["path"] == "/ready"
    claims = {v["persistentVolumeClaim"]["claimName"] for v in pod["spec"]["volumes"] if "persistentVolumeClaim" in v}
    assert claims == {"feblam-gateway-state"}  # one volume for both replicas
    settings = settings_from_dict(
        tomllib.loads(next(d for d in docs if d["kind"] == "ConfigMap")["data"]["gateway.toml"])
    )
    state = next(m for m in container["volumeMounts"] if m["name"] == "state")["mountPath"]
    assert settings.recovery.dir.startswith(state) and settings.gateway.standby
    assert settings.gateway.http_port == int(pod["metadata"]["annotations"]["prometheus.io/port"])
    active = (DEPLOY / "feblam-gateway.service").read_text()
    standby = (DEPLOY / "feblam-gateway-standby.service").read_text()
    assert (
        "--config /etc/feblam/gateway.toml" in active
        and "--config /etc/feblam/gateway.toml --http-port 8601" in standby
    )
