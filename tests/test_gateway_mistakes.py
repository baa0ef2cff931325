"""Operator mistakes with ``feblam gateway``: one clear line naming the key, topic, port or desk; a
non-zero status; no traceback; no password echoed."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from sources.broker import EmbeddedBroker, free_port
from tests.gateway_util import gateway_doc, write_config
from tests.test_operator_mistakes import assert_one_clear_line, feblam


def gateway_with(tmp_path: Path, doc: dict[str, Any]) -> Any:
    return feblam("gateway", "--config", str(write_config(tmp_path / "gateway.toml", doc)))


@pytest.mark.parametrize(
    ("change", "names"),
    [
        (lambda d: d["desks"][0].update(escalate_to="sicad-nowhere"), ["desks[0] (brussels).escalate_to", "sicad-nowhere", "no such desk"]),
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
    doc["desks"][0]["users"][0]["password_hash"] = "Sup3r-secret-night-shift"
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
    assert_one_clear_line(gateway_with(tmp_path, gateway_doc(dead)), dead, "kafka.brokers")


@pytest.mark.kafka
def test_missing_hits_topic_is_named_not_created(broker: EmbeddedBroker, topic_prefix: str, tmp_path: Path) -> None:
    broker.create_topics([f"{topic_prefix}.{t}" for t in ("hit-events", "hit-actions", "deadletter")])
    line = assert_one_clear_line(gateway_with(tmp_path, gateway_doc(broker.address, topic_prefix)),
                                 f"{topic_prefix}.hits", "gateway.hits_topics")
    assert "never auto-created" in line


@pytest.mark.kafka
def test_console_port_in_use_is_named(broker: EmbeddedBroker, topic_prefix: str, tmp_path: Path) -> None:
    broker.create_topics([f"{topic_prefix}.{t}" for t in ("hits", "hit-events", "hit-actions", "deadletter")])
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        proc = gateway_with(tmp_path, gateway_doc(broker.address, topic_prefix, http_port=port))
    assert_one_clear_line(proc, f"gateway.http_port {port}", "cannot listen")


def test_hash_password_refuses_a_short_password() -> None:
    import subprocess

    from tests.jobs import FEBLAM, clean_env

    short = subprocess.run([FEBLAM, "gateway", "hash-password"], input="short\n", capture_output=True, text=True,
                           timeout=30, env=clean_env(), check=False)
    assert short.returncode != 0 and "at least 12 characters" in short.stderr
    ok = subprocess.run([FEBLAM, "gateway", "hash-password"], input="a long night shift password\n", capture_output=True,
                        text=True, timeout=30, env=clean_env(), check=True)
    from argon2 import PasswordHasher

    assert PasswordHasher().verify(ok.stdout.strip(), "a long night shift password")
