"""Operator mistakes with ``feblam gateway``: one clear line naming the key, topic, port or desk; a
non-zero status; no traceback; no password echoed."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from sources.broker import EmbeddedBroker, free_port
from tests.support.gateway import gateway_doc, write_config
from tests.support.processes import assert_one_clear_line, feblam


def gateway_with(tmp_path: Path, doc: dict[str, Any]) -> Any:
    doc.setdefault("recovery", {"dir": str(tmp_path / "state")})
    return feblam("gateway", "--config", str(write_config(tmp_path / "gateway.toml", doc)))


def test_no_recovery_directory_is_one_line(tmp_path: Path) -> None:
    doc = gateway_doc()
    doc["recovery"] = {"dir": ""}
    assert_one_clear_line(gateway_with(tmp_path, doc), "recovery.dir", "every hit again as new")


@pytest.mark.parametrize(
    ("change", "names"),
    [
        (
            lambda d: d["desks"][0].update(escalate_to="sicad-nowhere"),
            ["desks[0] (brussels).escalate_to", "sicad-nowhere", "no such desk"],
        ),
        (lambda d: d["desks"][0].update(escalate_to="brussels"), ["desks[0] (brussels).escalate_to", "itself"]),
        (lambda d: d["desks"][1].update(name="brussels"), ["desks: name 'brussels' is used twice"]),
        (lambda d: d["desks"][1]["users"][0].update(name="brussels-1"), ["user 'brussels-1' is listed twice"]),
        (lambda d: d["gateway"].update(escalate_after_seconds={"9": 60}), ["gateway.escalate_after_seconds"]),
        (lambda d: d["gateway"].update(escalate_after_seconds={"1": -5}), ["gateway.escalate_after_seconds"]),
        (lambda d: d["gateway"].update(events_topic=d["gateway"]["actions_topic"]), ["must be different topics"]),
        (lambda d: d["desks"][0].update(camera_prefix=["CAM"]), ["desks[0].camera_prefix", "unknown key"]),
    ],
)
def test_bad_gateway_settings_are_named(tmp_path: Path, change: Any, names: list[str]) -> None:
    doc = gateway_doc()
    change(doc)
    assert_one_clear_line(gateway_with(tmp_path, doc), *names)


def test_a_password_instead_of_a_hash_is_refused_and_never_echoed(tmp_path: Path) -> None:
    doc = gateway_doc()
    doc["desks"][0]["users"][0]["password_hash"] = "Sup3r-secret-night-shift"  # noqa: S105 - the mistake under test
    proc = gateway_with(tmp_path, doc)
    assert_one_clear_line(proc, "desks[0].users[0].password_hash", "argon2id")
    assert "Sup3r-secret-night-shift" not in proc.stdout + proc.stderr
    shown = feblam("config", "show", "--config", str(tmp_path / "gateway.toml"))
    assert "Sup3r-secret" not in shown.stdout + shown.stderr


def test_no_desks_or_no_users_is_one_line(tmp_path: Path) -> None:
    doc = gateway_doc()
    doc.pop("desks")
    assert_one_clear_line(gateway_with(tmp_path, doc), "[[desks]]")
    doc = gateway_doc()
    for d in doc["desks"]:
        d["users"] = []
    assert_one_clear_line(gateway_with(tmp_path, doc), "no desk has users")


def test_unreachable_broker_is_named(tmp_path: Path) -> None:
    dead = f"127.0.0.1:{free_port()}"
    doc = gateway_doc(dead)
    doc["kafka"]["start_timeout_seconds"] = 2  # the one line names the broker whatever the wait
    assert_one_clear_line(gateway_with(tmp_path, doc), dead, "kafka.brokers")


@pytest.mark.kafka
def test_missing_hits_topic_is_named_not_created(broker: EmbeddedBroker, topic_prefix: str, tmp_path: Path) -> None:
    broker.create_topics(
        [f"{topic_prefix}.{t}" for t in ("hit-events", "hit-actions", "hit-access", "list-quality", "deadletter")]
    )
    line = assert_one_clear_line(
        gateway_with(tmp_path, gateway_doc(broker.address, topic_prefix)), f"{topic_prefix}.hits", "gateway.hits_topics"
    )
    assert "never auto-created" in line


@pytest.mark.kafka
def test_console_port_in_use_is_named(broker: EmbeddedBroker, topic_prefix: str, tmp_path: Path) -> None:
    broker.create_topics(
        [
            f"{topic_prefix}.{t}"
            for t in ("hits", "hit-events", "hit-actions", "hit-access", "list-quality", "deadletter")
        ]
    )
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        proc = gateway_with(tmp_path, gateway_doc(broker.address, topic_prefix, http_port=port))
    assert_one_clear_line(proc, f"gateway.http_port {port}", "cannot listen")


def test_hash_password_refuses_a_short_password() -> None:
    import subprocess

    from tests.support.processes import FEBLAM, clean_env

    short = subprocess.run(
        [FEBLAM, "gateway", "hash-password"],
        input="short\n",
        capture_output=True,
        text=True,
        timeout=30,
        env=clean_env(),
        check=False,
    )
    assert short.returncode != 0 and "at least 12 characters" in short.stderr
    ok = subprocess.run(
        [FEBLAM, "gateway", "hash-password"],
        input="a long night shift password\n",
        capture_output=True,
        text=True,
        timeout=30,
        env=clean_env(),
        check=True,
    )
    from argon2 import PasswordHasher

    assert PasswordHasher().verify(ok.stdout.strip(), "a long night shift password")


@pytest.mark.kafka
def test_the_example_gateway_runs_as_documented(tmp_path: Path) -> None:
    """examples/gateway.toml as its header says: broker from both example files, the documented login."""
    import re
    import signal
    import subprocess

    import httpx2

    from tests.support.gateway import hit_doc, produce_hits
    from tests.support.hotlists import EXAMPLES
    from tests.support.processes import FEBLAM, clean_env, wait_for

    port, console = free_port(), free_port()
    env = clean_env()
    broker = subprocess.Popen(
        [
            FEBLAM,
            "broker",
            "--config",
            str(EXAMPLES / "feblam.toml"),
            "--config",
            str(EXAMPLES / "gateway.toml"),
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        assert broker.stdout is not None
        topics = broker.stdout.readline()
        assert all(
            t in topics
            for t in (
                "hits",
                "hit-events",
                "hit-actions",
                "hit-access",
                "list-quality",
                "hits.deadletter",
                "reads.deadletter",
            )
        )
        env |= {"FEBLAM_KAFKA_BROKERS": f"127.0.0.1:{port}", "FEBLAM_GATEWAY_HTTP_PORT": str(console)}
        log = tmp_path / "gateway.log"
        gw = subprocess.Popen(
            [FEBLAM, "gateway", "--config", str(EXAMPLES / "gateway.toml")],
            cwd=tmp_path,
            env=env,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        try:
            hit = hit_doc("CAM-BXL-042")
            produce_hits(f"127.0.0.1:{port}", "hits", [hit])
            with httpx2.Client(base_url=f"http://127.0.0.1:{console}", timeout=5) as client:
                assert wait_for(lambda: _answers(client), 60), log.read_text()[-2000:]
                token = re.search(r"name=csrf value='([^']+)'", client.get("/login").text).group(1)  # type: ignore[union-attr]
                client.post(
                    "/login", data={"csrf": token, "user": "dispatcher-bxl", "password": "change-me-before-use"}
                )
                assert wait_for(
                    lambda: any(c["hit_id"] == hit["hit_id"] for c in client.get("/api/board").json()["cards"]), 30
                )
                # the Brussels CAD takes the same case through the API; the partner does not see it
                cad = {"authorization": "Bearer example-cad-brussels-token-change-me-before-use"}
                cases = client.get("/api/v1/cases", headers=cad).json()["cases"]
                assert [c["case_id"] for c in cases] == [hit["hit_id"]]
                lez = {"authorization": "Bearer example-lez-operator-token-change-me-before-use"}
                assert client.get("/api/v1/cases", headers=lez).json()["cases"] == []
        finally:
            gw.send_signal(signal.SIGTERM)
            assert gw.wait(timeout=30) == 0, log.read_text()[-2000:]
        assert (tmp_path / "example-out" / "gateway-state").is_dir()
    finally:
        broker.send_signal(signal.SIGTERM)
        assert broker.wait(timeout=15) == 0


def _answers(client: Any) -> bool:
    try:
        return client.get("/ready").status_code == 200
    except Exception:
        return False
