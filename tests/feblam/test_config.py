from __future__ import annotations

from pathlib import Path

import pytest

from feblam.config import ENV_KEYS, Rule, Settings, load_settings
from feblam.errors import ConfigError

TOML = """
[kafka]
brokers = "k1:9092,k2:9092"
sasl_mechanism = "PLAIN"
sasl_username = "feblam"
sasl_password = "s3cret"

[[sources]]
topic = "reads.vendor-a"
vendor = "vendor-a"

[[sources]]
topic = "reads.vendor-c"
vendor = "vendor-c"

[hotlists]
dir = "/srv/hotlists"
poll_seconds = 5

[dedup]
window_seconds = 0

[deadletter]
topic = "reads.deadletter"

[[sinks]]
name = "all-hits"
topic = "hits"

[[sinks]]
name = "liege"
path = "liege.jsonl"
max_priority = 2
categories = ["stolen_vehicle"]
camera_prefixes = ["CAM-LIE-"]

[recovery]
dir = "state/"
"""


def test_defaults_need_no_file() -> None:
    s = load_settings(None, environ={})
    assert s == Settings()
    assert s.dedup.window_seconds == 300


def test_file_then_environment(tmp_path: Path) -> None:
    p = tmp_path / "feblam.toml"
    p.write_text(TOML)
    s = load_settings(p, environ={"FEBLAM_KAFKA_BROKERS": "env:1", "FEBLAM_DEDUP_WINDOW_SECONDS": "60"})
    assert s.kafka.brokers == "env:1"
    assert s.dedup.window_seconds == 60.0
    assert s.hotlists.poll_seconds == 5.0
    assert [x.vendor for x in s.sources] == ["vendor-a", "vendor-c"]
    assert s.sinks[1].rule == Rule(max_priority=2, categories=("stolen_vehicle",), camera_prefixes=("CAM-LIE-",))
    assert s.recovery.dir == "state/"


def test_secrets_are_redacted(tmp_path: Path) -> None:
    p = tmp_path / "feblam.toml"
    p.write_text(TOML)
    s = load_settings(p, environ={})
    assert "s3cret" not in repr(s.redacted())
    assert s.redacted()["kafka"]["sasl_password"] == "***"  # noqa: S105 - the mask, not a password


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[kafka]\nbrokerz = 'x'\n", "unknown key"),
        ("[dedup]\nwindow_seconds = 'soon'\n", "not a valid float"),
        ("[[sources]]\ntopic = 't'\nvendor = 'vendor-q'\n", "unknown vendor"),
        ("[[sinks]]\nname = 'a'\ntopic = 't'\npath = 'p'\n", "exactly one of topic or path"),
        ("[[sinks]]\nname = 'a'\ntopic = 't'\nmax_priority = 9\n", "not 1..5"),
        ("[[sinks]]\nname = 'a'\ntopic = 't'\nactions = ['arrest']\n", "not one of"),
        ("[nonsense]\n", "unknown section"),
        ("[kafka\n", "not valid TOML"),
    ],
)
def test_bad_config_is_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    p = tmp_path / "feblam.toml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_settings(p, environ={})


def test_bad_environment_value_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="FEBLAM_HOTLISTS_SHARDS"):
        load_settings(None, environ={"FEBLAM_HOTLISTS_SHARDS": "many"})


def test_every_section_key_has_an_env_variable() -> None:
    assert "FEBLAM_KAFKA_BROKERS" in ENV_KEYS
    assert "FEBLAM_RECOVERY_DIR" in ENV_KEYS
    assert "FEBLAM_PRIVACY_HASH_KEY" in ENV_KEYS
