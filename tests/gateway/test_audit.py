"""``feblam gateway audit`` against the bundled broker: who saw hit X, what user Y saw on day D."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
import tomli_w

from feblam.cli import main
from gateway.access import access_event
from sources.broker import EmbeddedBroker
from tests.support.gateway import gateway_doc
from tests.support.kafka import produce

pytestmark = pytest.mark.kafka


def test_an_auditor_finds_who_saw_a_hit_and_what_a_user_saw_on_a_day(
    broker: EmbeddedBroker, topic_prefix: str, tmp_path: Path, capsys: Any
) -> None:
    from feblam.serde import parse_ts

    topic = f"{topic_prefix}.hit-access"
    broker.create_topics([topic], partitions=2)
    day1, day2 = parse_ts("2026-11-30T09:00:00Z"), parse_ts("2026-12-01T10:00:00Z")
    events = [
        access_event("signin", user="brussels-1", desk="brussels", client="10.0.0.1", session="t1", at=day1),
        access_event(
            "shown", user="brussels-1", desk="brussels", client="10.0.0.1", session="t1", hit_ids=["H1", "H2"], at=day1
        ),
        access_event(
            "shown", user="antwerp-1", desk="antwerp", client="10.0.0.2", session="t2", hit_ids=["H2"], at=day2
        ),
        access_event(
            "shown", user="brussels-1", desk="brussels", client="10.0.0.1", session="t3", hit_ids=["H3"], at=day2
        ),
    ]
    produce(broker.address, topic, [orjson.dumps(e) for e in events])
    cfg = tmp_path / "gateway.toml"
    cfg.write_bytes(tomli_w.dumps(gateway_doc(broker.address, topic_prefix)).encode())

    assert main(["gateway", "audit", "--config", str(cfg), "--hit", "H2"]) == 0
    out = capsys.readouterr()
    assert [(e["user"], e["at"][:10]) for e in map(orjson.loads, out.out.splitlines())] == [
        ("brussels-1", "2026-11-30"),
        ("antwerp-1", "2026-12-01"),
    ]
    assert "events=2 of 4" in out.err

    assert main(["gateway", "audit", "--config", str(cfg), "--user", "brussels-1", "--day", "2026-12-01"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert orjson.loads(line)["hit_ids"] == ["H3"]
    assert main(["gateway", "audit", "--config", str(cfg), "--day", "yesterday"]) == 2
