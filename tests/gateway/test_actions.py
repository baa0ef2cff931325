"""Desk actions: one encoding, signed; the key from the environment, a file, or the recovery directory."""

from __future__ import annotations

import stat
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from feblam.config import replace
from feblam.errors import FeblamError
from gateway.actions import DeskAction, decode_action, encode_action, load_action_key
from tests.support.gateway import ACTION_KEY, gateway_settings

AT = datetime(2026, 11, 29, 20, 0, tzinfo=UTC)
ACK = DeskAction("h1", "brussels", "brussels-1", "acknowledge", AT, vehicle="0123456789abcdef")
CLOSE = DeskAction("h1", "brussels", "brussels-1", "close", AT, "false_read", "O for 0", "0123456789abcdef")


def test_an_action_round_trips_signed_and_any_change_breaks_the_signature() -> None:
    got = decode_action(encode_action(ACK, ACTION_KEY), ACTION_KEY)
    assert got.signed and got.action == ACK
    assert decode_action(encode_action(CLOSE, ACTION_KEY), ACTION_KEY).action == CLOSE
    doc = orjson.loads(encode_action(CLOSE, ACTION_KEY))
    for field, value in (
        ("user", "brussels-2"),
        ("desk", "antwerp"),
        ("kind", "acknowledge"),
        ("at", "1970-01-01T00:00:00Z"),
        ("outcome", "other"),
        ("reason", "something else"),
        ("vehicle", "fedcba9876543210"),
    ):
        assert not decode_action(orjson.dumps(doc | {field: value}), ACTION_KEY).signed, field
    assert not decode_action(encode_action(ACK, b"x" * 40), ACTION_KEY).signed


def test_the_key_is_made_once_in_the_recovery_directory_readable_by_its_user_only(tmp_path: Path) -> None:
    settings = replace(gateway_settings(), recovery=replace(gateway_settings().recovery, dir=str(tmp_path)))
    key = load_action_key(settings, {})
    mode = stat.S_IMODE((tmp_path / "action.key").stat().st_mode)
    assert len(key) >= 32 and mode == 0o600
    assert load_action_key(settings, {}) == key  # the same key after a restart: replayed actions stay valid


def test_the_environment_wins_and_a_short_key_is_one_clear_error(tmp_path: Path) -> None:
    settings = replace(gateway_settings(), recovery=replace(gateway_settings().recovery, dir=str(tmp_path)))
    assert load_action_key(settings, {"FEBLAM_GATEWAY_ACTION_KEY": "k" * 32}) == b"k" * 32
    with pytest.raises(FeblamError, match="FEBLAM_GATEWAY_ACTION_KEY: the action key has 5 bytes"):
        load_action_key(settings, {"FEBLAM_GATEWAY_ACTION_KEY": "short"})
    (tmp_path / "k").write_text("x" * 10)
    in_file = replace(settings, gateway=replace(settings.gateway, action_key_file=str(tmp_path / "k")))
    with pytest.raises(FeblamError, match="gateway.action_key_file: the action key has 10 bytes"):
        load_action_key(in_file, {})
