"""A plate never appears in clear in a log line or a dead-letter-free output."""

from __future__ import annotations

from pathlib import Path

import structlog
from structlog.testing import capture_logs

from feblam.cli import main
from feblam.logs import plate_ref, set_hash_key
from tests.support.hotlists import EXAMPLES

PLATES = ["1ABC123", "1-ABC-123", "1B0BO8O", "GZ123K", "BMW1234", "AB123CD", "1NOHIT1"]


def test_plate_ref_is_keyed_and_stable() -> None:
    set_hash_key("k1")
    a = plate_ref("1ABC123")
    assert a == plate_ref("1ABC123") and "1ABC123" not in a
    set_hash_key("k2")
    assert plate_ref("1ABC123") != a
    set_hash_key("feblam-development-key-change-me")


def test_replay_logs_no_plate(tmp_path: Path, monkeypatch) -> None:
    import feblam.logs

    structlog.reset_defaults()  # an earlier test may have configured a warning-level filter
    monkeypatch.setattr(feblam.logs, "configure", lambda *a, **k: None)  # keep capture_logs in place
    with capture_logs() as logs:
        rc = main(
            [
                "replay",
                "--hotlists",
                str(EXAMPLES / "hotlists"),
                "--input",
                f"vendor-a={EXAMPLES / 'input' / 'vendor-a.jsonl'}",
                "--input",
                f"canonical={EXAMPLES / 'input' / 'canonical.jsonl'}",
                "--out",
                str(tmp_path / "h.jsonl"),
                "--dlq",
                str(tmp_path / "d.jsonl"),
            ]
        )
    structlog.reset_defaults()
    assert rc == 0
    assert logs, "the replay should log at least the index build"
    text = repr(logs)
    for plate in PLATES:
        assert plate not in text
