from __future__ import annotations

from pathlib import Path

import pytest

from feblam.config import ENV_KEYS, Rule, Settings, load_settings
from feblam.errors import ConfigError

TOML = """
[kafka]
brokers = "k1:9092,k2:9092"
security_protocol = "sasl_ssl"
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
        ("[kafka]\nbrokerz = 'x'\n", "kafka.brokerz: unknown key; did you mean 'brokers'"),
        ("[dedup]\nwindow_seconds = 'soon'\n", r"dedup.window_seconds = 'soon': expected `float`, got `str`"),
        (
            "[[sources]]\ntopic = 't'\nvendor = 'vendor-q'\n",
            r"sources\[0\].vendor = 'vendor-q': not a built-in vendor",
        ),
        ("[[sinks]]\nname = 'a'\ntopic = 't'\npath = 'p'\n", "exactly one of topic, path or parquet_dir"),
        (
            "[[sinks]]\nname = 'a'\ntopic = 't'\nmax_priority = 9\n",
            r"sinks\[0\].rule.max_priority = 9: expected `int` <= 5",
        ),
        (
            "[[sinks]]\nname = 'a'\ntopic = 't'\nactions = ['arrest']\n",
            r"sinks\[0\].rule.actions\[0\] = 'arrest': invalid enum value",
        ),
        ("[nonsense]\n", r"\[nonsense\]: unknown section"),
        ("[kafka\n", "not valid TOML"),
        ("[kafka]\nstart = 'beginning'\n", "kafka.start = 'beginning': invalid enum value"),
        ("[logging]\nlevel = 'verbose'\n", "logging.level = 'verbose': invalid enum value"),
        ("[logging]\nformat = 'jsno'\n", "logging.format = 'jsno': invalid enum value"),
        ("[hotlists]\nbloom_backend = 'rbloomm'\n", "hotlists.bloom_backend = 'rbloomm': invalid enum value"),
        ("[hotlists]\nbloom_fp_rate = 2\n", "hotlists.bloom_fp_rate = 2: expected `float` < 1"),
        ("[hotlists]\nshards = 0\n", "hotlists.shards = 0: expected `int` >= 1"),
        ("[hotlists]\nmax_shrink = 1.5\n", "hotlists.max_shrink = 1.5: expected `float` <= 1"),
        ("[[sinks]]\nname = 'a'\ntopic = 'h'\n[[sinks]]\nname = 'a'\npath = 'p'\n", "name 'a' is used twice"),
        ("sinks = []\n", "at least one"),
        ("[deadletter]\ntopic = ''\n", "dead letters would be lost"),
        (
            "[hotlists]\nchanges_topic = 'c'\nlist_changes_topics = { SIS = 'c' }\n",
            r"hotlists.list_changes_topics.SIS: 'c' is hotlists.changes_topic, the shared topic",
        ),
        ("[hotlists]\nlist_changes_topics = { SIS = ' ' }\n", "hotlists.list_changes_topics.SIS: ' ' is not a topic"),
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


def test_every_bad_key_is_named_not_only_the_first(tmp_path: Path) -> None:
    p = tmp_path / "feblam.toml"
    p.write_text("[hotlists]\nshards = 0\nbloom_backend = 'x'\n[logging]\nlevel = 'verbose'\n")
    with pytest.raises(ConfigError) as info:
        load_settings(p, environ={})
    lines = str(info.value).splitlines()
    assert len(lines) == 3
    assert [line.split(": ")[1].split(" ")[0] for line in lines] == [
        "hotlists.shards",
        "hotlists.bloom_backend",
        "logging.level",
    ]


def test_unknown_feblam_variable_is_an_error_with_a_suggestion() -> None:
    with pytest.raises(
        ConfigError, match="FEBLAM_KAFKA_BROKER: unknown environment variable; did you mean FEBLAM_KAFKA_BROKERS"
    ):
        load_settings(None, environ={"FEBLAM_KAFKA_BROKER": "x:1"})


def test_environment_values_are_validated_like_the_file() -> None:
    with pytest.raises(ConfigError, match="FEBLAM_KAFKA_START = 'beginning': invalid enum value"):
        load_settings(None, environ={"FEBLAM_KAFKA_START": "beginning"})
    assert load_settings(None, environ={"FEBLAM_HOTLISTS_SHARED_BUILD": "false"}).hotlists.shared_build is False


def test_the_shipped_reference_is_generated_from_the_schema() -> None:
    from feblam.config import reference_markdown

    doc = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
    assert doc.read_text(encoding="utf-8") == reference_markdown() + "\n", (
        "run: feblam config reference > docs/configuration.md"
    )
    for var in ENV_KEYS:
        assert var in doc.read_text(encoding="utf-8")


def test_the_shipped_example_configuration_is_valid() -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "feblam.toml"
    s = load_settings(example, environ={})
    assert s.sinks and s.sources


def test_vendor_names_are_the_decoder_registry() -> None:
    from feblam.model import VENDOR_NAMES
    from sources.vendors import VENDORS

    assert tuple(VENDORS)[: len(VENDOR_NAMES)] == VENDOR_NAMES  # then the mapped ones, once registered


def test_a_deadletter_path_alone_is_the_file_alone_as_design_8_shows_it() -> None:
    from feblam.config import check_config

    settings, problems = check_config({"deadletter": {"path": "dlq.jsonl"}}, "t", {})
    assert problems == [] and settings is not None
    assert (settings.deadletter.path, settings.deadletter.topic) == ("dlq.jsonl", "")
    _, both = check_config({"deadletter": {"path": "dlq.jsonl", "topic": "reads.deadletter"}}, "t", {})
    assert both == ["t: deadletter: give one of topic or path, not both"]
    env_settings, _ = check_config({}, "t", {"FEBLAM_DEADLETTER_PATH": "dlq.jsonl"})
    assert env_settings is not None and env_settings.deadletter.topic == ""


@pytest.mark.parametrize(
    ("kafka", "message"),
    [
        (
            {"brokers": "kafka.police.internal:9092"},
            "kafka.brokers kafka.police.internal:9092: kafka.security_protocol plaintext",
        ),
        (
            {
                "brokers": "10.0.0.5:9092",
                "security_protocol": "sasl_plaintext",
                "sasl_mechanism": "SCRAM-SHA-512",
                "sasl_username": "u",
                "sasl_password": "p",
            },
            "sends hits, plates and credentials in clear",
        ),
        ({"security_protocol": "sasl_ssl"}, "kafka.security_protocol sasl_ssl needs kafka.sasl_mechanism"),
        (
            {"sasl_mechanism": "SCRAM-SHA-256", "sasl_username": "u", "sasl_password": "p"},
            "needs kafka.security_protocol sasl_ssl",
        ),
        (
            {"security_protocol": "sasl_ssl", "sasl_mechanism": "SCRAM-SHA-256"},
            "needs kafka.sasl_username",
        ),
        ({"security_protocol": "ssl", "ssl_certificate_location": "c.pem"}, "go together (mutual TLS)"),
    ],
)
def test_an_unsafe_kafka_connection_is_refused_naming_the_key(kafka: dict, message: str) -> None:
    from feblam.config import check_config

    settings, problems = check_config({"kafka": kafka}, "t", {})
    assert settings is None and any(message in p for p in problems), problems


def test_safe_kafka_connections_are_accepted_and_configured() -> None:
    from feblam.config import check_config

    for kafka in (
        {"brokers": "127.0.0.1:9092,localhost:9093,[::1]:9094"},  # plaintext on loopback
        {"brokers": "kafka.internal:9092", "allow_plaintext": True},
        {
            "brokers": "k:9093",
            "security_protocol": "sasl_ssl",
            "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_username": "feblam-job",
            "sasl_password": "p",
            "ssl_ca_location": "ca.pem",
        },
        {
            "brokers": "k:9093",
            "security_protocol": "ssl",
            "ssl_certificate_location": "c.pem",
            "ssl_key_location": "k.pem",
        },
        {
            "brokers": "k:9093",
            "security_protocol": "sasl_ssl",
            "sasl_mechanism": "OAUTHBEARER",
            "oauthbearer_token_endpoint_url": "https://idp/token",
            "oauthbearer_client_id": "feblam",
            "oauthbearer_client_secret": "s",
        },
    ):
        settings, problems = check_config({"kafka": kafka}, "t", {})
        assert problems == [] and settings is not None, (kafka, problems)
    conf = settings.kafka.client_config()
    assert conf["sasl.oauthbearer.method"] == "oidc" and "sasl.username" not in conf
    assert settings.redacted()["kafka"]["oauthbearer_client_secret"] == "***"  # noqa: S105 - the mask


def test_every_secret_is_masked_also_the_desks_password_hashes() -> None:
    from tests.support.gateway import gateway_settings

    shown = gateway_settings().redacted()
    assert shown["desks"][0]["users"][0]["password_hash"] == "***"  # noqa: S105 - the mask
    assert shown["privacy"]["hash_key"] == "***"
    assert "argon2" not in str(shown)
