"""Typed, frozen settings from a TOML file, overridable by ``FEBLAM_<SECTION>_<KEY>``.

One schema: the msgspec structs below. Every key has a type, its allowed
values or range (``Literal`` / ``Meta``), a default and one line of description;
msgspec validates as it converts (no coercion written by hand here). The same
schema generates ``docs/configuration.md`` (:func:`reference_markdown`) and
``feblam config-env`` (:data:`ENV_KEYS`). Unknown keys and unknown ``FEBLAM_*``
variables are errors; :func:`check_config` reports every bad key, one line each.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import tomllib
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import msgspec
from msgspec import Meta

from feblam.errors import ConfigError
from feblam.logs import kafka_logger
from feblam.model import ACTIONS, VENDOR_NAMES

SECRET_KEYS = frozenset(
    {"sasl_password", "hash_key", "ssl_key_password", "password_hash", "oauthbearer_client_secret", "token_sha256"}
)


def _loopback(address: str) -> bool:
    """Whether ``host:port`` (or a bare host) names this machine (loopback by name or address)."""
    host = address.rpartition(":")[0] if address.count(":") == 1 or "]:" in address else address
    host = host.strip("[]")
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


DEV_HASH_KEY = "feblam-development-key-change-me"


def refuse_development_key(settings: Settings, command: str) -> None:
    """``feblam run``, ``retro`` and ``gateway`` never hash plates under the key every clone knows."""
    if settings.privacy.hash_key == DEV_HASH_KEY:
        msg = (
            f"privacy.hash_key: feblam {command} refuses the development key; set privacy.hash_key "
            "or FEBLAM_PRIVACY_HASH_KEY to a secret of this deployment, the same on every process "
            "(feblam demo makes its own)"
        )
        raise ConfigError(msg)


#: FEBLAM_* variables that are not configuration keys (the benchmark's cache folders).
#: Variables read outside the schema: the bench's caches; the gateway's action key (a secret: never a config value).
OTHER_ENV = frozenset({"FEBLAM_BENCH_CACHE", "FEBLAM_BENCH_INDEX_CACHE", "FEBLAM_GATEWAY_ACTION_KEY"})

#: A vendor name (a pattern, not a Literal, so that callers may pass any ``str`` they hold).
Vendor = Annotated[
    str,
    Meta(
        pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$",
        description=f"a built-in vendor ({', '.join(VENDOR_NAMES)}) or a mapping NAME.toml in vendors.dir",
    ),
]
Action = Literal["intercept", "observe", "inform"]
Priority = Annotated[int, Meta(ge=1, le=5)]
Seconds = Annotated[float, Meta(ge=0)]


def _doc(text: str) -> Meta:
    return Meta(description=text)


class KafkaSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``[kafka]``: the broker and the clients' settings."""

    brokers: Annotated[str, Meta(min_length=1, description="bootstrap servers, comma-separated host:port")] = (
        "127.0.0.1:9092"
    )
    security_protocol: Annotated[
        Literal["plaintext", "ssl", "sasl_plaintext", "sasl_ssl"], _doc("librdkafka security.protocol")
    ] = "plaintext"
    sasl_mechanism: Annotated[
        Literal["", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER", "GSSAPI"],
        _doc("SASL mechanism; empty: no SASL"),
    ] = ""
    sasl_username: Annotated[str, _doc("SASL user name")] = ""
    sasl_password: Annotated[str, _doc("SASL password (secret: masked in logs and `config show`)")] = ""
    ssl_ca_location: Annotated[str, _doc("CA certificate file for ssl / sasl_ssl")] = ""
    ssl_certificate_location: Annotated[str, _doc("this client's certificate (PEM) for mutual TLS")] = ""
    ssl_key_location: Annotated[str, _doc("this client's private key (PEM) for mutual TLS")] = ""
    ssl_key_password: Annotated[str, _doc("password of ssl_key_location (secret: masked)")] = ""
    oauthbearer_token_endpoint_url: Annotated[
        str, _doc("OAUTHBEARER: the OIDC token endpoint (client-credentials grant); empty: librdkafka's default")
    ] = ""
    oauthbearer_client_id: Annotated[str, _doc("OAUTHBEARER: this client's id at the token endpoint")] = ""
    oauthbearer_client_secret: Annotated[str, _doc("OAUTHBEARER: this client's secret (masked)")] = ""
    allow_plaintext: Annotated[
        bool,
        _doc(
            "allow plaintext or sasl_plaintext to a broker that is not on loopback (hits, plates and SASL "
            "passwords in clear on the network); false: such a configuration is refused"
        ),
    ] = False
    batch_size: Annotated[
        int, Meta(ge=1, le=1_000_000, description="most messages one poll of a partition returns")
    ] = 5000
    poll_timeout_ms: Annotated[
        int, Meta(ge=1, le=60_000, description="how long an idle partition waits before it is polled again")
    ] = 50
    fetch_wait_ms: Annotated[
        int,
        Meta(
            ge=1,
            le=60_000,
            description="broker long-poll bound; raise it (e.g. 100) on a Kafka that answers on arrival",
        ),
    ] = 10
    start: Annotated[Literal["earliest", "latest"], _doc("where a partition with no stored offset starts")] = "earliest"
    linger_ms: Annotated[
        int,
        Meta(
            ge=0,
            le=60_000,
            description="producer linger: 0 sends a hit at once; each ms batches more a request and adds that "
            "much to a hit's latency",
        ),
    ] = 0
    client_id: Annotated[str, Meta(min_length=1, description="client.id on the broker")] = "feblam"
    group_id: Annotated[
        str, Meta(min_length=1, description="consumer group the job's positions are committed to (lag tools)")
    ] = "feblam"
    delivery_timeout_seconds: Annotated[
        float,
        Meta(
            gt=0,
            le=3600,
            description="a hit the broker has not confirmed within this time stops the job (it restarts from the last snapshot)",
        ),
    ] = 30.0
    start_timeout_seconds: Annotated[
        float, Meta(gt=0, le=600, description="how long start-up waits for the broker and topics before it gives up")
    ] = 10.0

    def client_config(self) -> dict[str, Any]:
        """librdkafka settings shared by consumers and producers."""
        conf: dict[str, Any] = {
            "bootstrap.servers": self.brokers,
            "security.protocol": self.security_protocol,
            "client.id": self.client_id,
            "log.connection.close": False,
            "reconnect.backoff.max.ms": 2000,  # back within seconds of a broker's return (default 10 s)
            "logger": kafka_logger(),  # librdkafka's lines become rate-limited structured events
        }
        if self.sasl_mechanism:
            conf["sasl.mechanism"] = self.sasl_mechanism
            conf["sasl.username"] = self.sasl_username
            conf["sasl.password"] = self.sasl_password
        if self.sasl_mechanism == "OAUTHBEARER":
            del conf["sasl.username"], conf["sasl.password"]
            if self.oauthbearer_token_endpoint_url:
                conf["sasl.oauthbearer.method"] = "oidc"
                conf["sasl.oauthbearer.token.endpoint.url"] = self.oauthbearer_token_endpoint_url
                conf["sasl.oauthbearer.client.id"] = self.oauthbearer_client_id
                conf["sasl.oauthbearer.client.secret"] = self.oauthbearer_client_secret
        for key, value in (
            ("ssl.ca.location", self.ssl_ca_location),
            ("ssl.certificate.location", self.ssl_certificate_location),
            ("ssl.key.location", self.ssl_key_location),
            ("ssl.key.password", self.ssl_key_password),
        ):
            if value:
                conf[key] = value
        return conf

    def security_problems(self) -> list[str]:
        """What makes this client's connection unsafe or inconsistent, one line each (``config check``)."""
        problems = []
        sasl = self.security_protocol.startswith("sasl_")
        if sasl and not self.sasl_mechanism:
            problems.append(f"kafka.security_protocol {self.security_protocol} needs kafka.sasl_mechanism")
        if self.sasl_mechanism and not sasl:
            problems.append(
                f"kafka.sasl_mechanism {self.sasl_mechanism} needs kafka.security_protocol sasl_ssl (or sasl_plaintext)"
            )
        if self.sasl_mechanism in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512") and not self.sasl_username:
            problems.append(f"kafka.sasl_mechanism {self.sasl_mechanism} needs kafka.sasl_username")
        if bool(self.ssl_certificate_location) != bool(self.ssl_key_location):
            problems.append("kafka.ssl_certificate_location and kafka.ssl_key_location go together (mutual TLS)")
        if self.security_protocol in ("plaintext", "sasl_plaintext") and not self.allow_plaintext:
            remote = [b for b in self.brokers.split(",") if not _loopback(b.strip())]
            if remote:
                problems.append(
                    f"kafka.brokers {', '.join(remote)}: kafka.security_protocol {self.security_protocol} to a broker "
                    "off this machine sends hits, plates and credentials in clear; use ssl or sasl_ssl, "
                    "or set kafka.allow_plaintext = true"
                )
        return problems


class SourceSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One ``[[sources]]``: a camera-vendor topic."""

    topic: Annotated[str, Meta(min_length=1, description="a camera-vendor topic")]
    vendor: Annotated[Vendor, _doc("the decoder of its payloads: a built-in vendor, or a mapping in vendors.dir")]


class VendorSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``[vendors]``: camera vendors defined by mapping files (DESIGN 3), beside the built-in ones."""

    dir: Annotated[
        str,
        _doc(
            "folder of vendor mappings (NAME.toml: where each canonical field sits in the payload); each is a "
            "vendor [[sources]] and replay --input may name; empty: the built-in vendors only"
        ),
    ] = ""


class HotlistSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``[hotlists]``: the hotlist directory, the index and its builder."""

    dir: Annotated[str, Meta(min_length=1, description="hotlist directory (one folder per list)")] = "hotlists/"
    poll_seconds: Annotated[
        float, Meta(gt=0, le=86_400, description="how often the directory is checked for new snapshots")
    ] = 10.0
    shards: Annotated[int, Meta(ge=1, le=4096, description="exact-set shards of the index")] = 31
    bloom_backend: Annotated[Literal["rbloom", "pybloom"], _doc("Bloom filter library")] = "rbloom"
    ocr_rule: Annotated[
        Literal["classes", "format"],
        _doc(
            "OCR-equivalent matching: classes (DESIGN 4: any substitution within a class) or format (only "
            "substitutions the country's plate format needs; matchers/formats.py, `ocr_format` matches)"
        ),
    ] = "classes"
    bloom_fp_rate: Annotated[float, Meta(gt=0, lt=1, description="Bloom false-positive rate")] = 0.001
    cache_dir: Annotated[
        str,
        _doc(
            "where versions are built and mapped (shared by the processes of a machine); empty: /dev/shm or the temp dir"
        ),
    ] = ""
    versions_dir: Annotated[
        str,
        _doc(
            "map the versions a builder apart publishes here (feblam index build --watch --out DIR) instead of building; empty: build"
        ),
    ] = ""
    shared_build: Annotated[
        bool, _doc("build versions in a child process and memory-map them; false: in the job's process")
    ] = True
    layer_max_fraction: Annotated[
        float,
        Meta(
            ge=0,
            le=1,
            description="deltas under this share of the snapshot bytes are layered, not rebuilt; 0: always rebuild",
        ),
    ] = 0.2
    changes_topic: Annotated[
        str, _doc("topic of single upserts and deletes, live within a second (DESIGN 5.2); empty: none")
    ] = ""
    list_changes_topics: Annotated[
        dict[str, str],
        _doc(
            "a list's own change topic (list id = topic), so the broker's ACLs give each source its lists only; "
            "such a list takes no change from changes_topic, and its topic no other list's"
        ),
    ] = msgspec.field(default_factory=dict)
    max_shrink: Annotated[
        float,
        Meta(
            ge=0,
            le=1,
            description="a new full snapshot that removes more than this share of a live list is rejected; 1.0: off",
        ),
    ] = 0.5

    def change_topics(self) -> list[str]:
        """Every topic changes come from: the shared one, then each list's own."""
        topics = [self.changes_topic] if self.changes_topic else []
        return topics + sorted({t for t in self.list_changes_topics.values() if t not in topics})

    def lists_of(self, topic: str) -> list[str]:
        """The lists bound to ``topic`` as their own change topic, sorted."""
        return sorted(lid for lid, t in self.list_changes_topics.items() if t == topic)

    def change_topic_of(self, list_id: str) -> str:
        """The one topic a change of ``list_id`` is taken from ("" when none)."""
        return self.list_changes_topics.get(list_id, self.changes_topic)


class DedupSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``[dedup]``: duplicate suppression."""

    window_seconds: Annotated[
        float,
        Meta(
            ge=0, le=86_400, description="suppress a repeat hit of a plate and entry within this capture time; 0: off"
        ),
    ] = 300.0


class DeadletterSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``[deadletter]``: where undecodable reads go."""

    topic: Annotated[str, _doc("dead-letter topic")] = "reads.deadletter"
    path: Annotated[str, _doc("dead-letter JSONL file instead of a topic")] = ""


class Rule(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Which hits a sink takes; every condition given must hold (empty = any).

    The match-level conditions (priority, category, action, list, owner) must
    hold together for at least one match of the hit.
    """

    max_priority: Annotated[Priority, _doc("only hits of this priority or higher (1 = highest)")] = 5
    categories: Annotated[tuple[str, ...], _doc("only these categories")] = ()
    actions: Annotated[tuple[Action, ...], _doc("only these actions")] = ()
    lists: Annotated[tuple[str, ...], _doc("only these list ids")] = ()
    owners: Annotated[tuple[str, ...], _doc("only entries of these owners")] = ()
    camera_prefixes: Annotated[tuple[str, ...], _doc("only cameras whose id starts with one of these")] = ()
    retro: Annotated[bool | None, _doc("true: only retro-hits; false: only live hits; absent: both")] = None


class SinkSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One ``[[sinks]]``: a hit sink and its rule."""

    name: Annotated[str, Meta(min_length=1, description="unique sink name (metrics, logs)")]
    topic: Annotated[str, _doc("hits topic (must exist)")] = ""
    path: Annotated[str, _doc("hits JSONL file (appended, never truncated)")] = ""
    parquet_dir: Annotated[str, _doc("Parquet audit folder, one day=YYYY-MM-DD partition per UTC day of emission")] = ""
    rotate_bytes: Annotated[int, Meta(ge=0, description="JSONL: start a new file past this size; 0: never")] = 0
    rotate_daily: Annotated[bool, _doc("JSONL: start a new file each UTC day")] = False
    keep: Annotated[int, Meta(ge=0, description="JSONL: rotated files kept (oldest removed first); 0: keep all")] = 0
    rule: Annotated[Rule, _doc("which hits go here (the rule keys may also sit on the sink)")] = msgspec.field(
        default_factory=Rule
    )


class RecoverySettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``[recovery]``: the Bytewax recovery store and the epoch length."""

    dir: Annotated[str, _doc("Bytewax recovery store; empty: no recovery")] = ""
    snapshot_seconds: Annotated[
        float, Meta(gt=0, le=3600, description="epoch length: how often state is snapshotted and sinks flushed")
    ] = 2.0
    backup_seconds: Annotated[Seconds, _doc("how long old snapshots are kept (Bytewax backup_interval)")] = 0.0


class OutputSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``[outputs]``: what the files FEBLAM writes (file sinks, Parquet audit, dead letters) need to start."""

    min_free_mb: Annotated[
        int,
        Meta(
            ge=0,
            le=10_000_000,
            description="a file output's filesystem needs this much free space at start; 0: no check",
        ),
    ] = 100


class PrivacySettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``[privacy]``: the plate-hash key."""

    hash_key: Annotated[
        str,
        Meta(
            min_length=16,
            description="key of the plate hash in logs and message keys; the same on every process (secret)",
        ),
    ] = DEV_HASH_KEY


class RetroSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    window_minutes: Annotated[
        float,
        Meta(
            ge=0,
            le=7 * 24 * 60,
            description="how far back a retro-scan looks when entries are added (DESIGN 10); 0: off",
        ),
    ] = 60.0
    timeout_seconds: Annotated[
        float, Meta(gt=0, le=3600, description="a retro-scan gives up (and says so) after this long")
    ] = 300.0


class CloneSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``[clones]``: cloned plates caught live (one plate read at two places too far apart for the time between)."""

    enabled: Annotated[
        bool, _doc("check every read against the plate's last sighting (off: the deployment decides its legal basis)")
    ] = False
    window_minutes: Annotated[
        float, Meta(gt=0, le=24 * 60, description="how long a plate's last sighting is kept (and no longer)")
    ] = 120.0
    max_kmh: Annotated[
        float, Meta(gt=0, le=10_000, description="a speed between two sightings above this is a clone hit")
    ] = 250.0
    min_km: Annotated[
        float,
        Meta(ge=0, le=1000, description="sightings closer than this are one site (GPS and gantries), never a clone"),
    ] = 2.0
    min_confidence: Annotated[
        float,
        Meta(ge=0, le=1, description="both reads at least this confident (a read with no confidence: below, unless 0)"),
    ] = 0.8
    cameras: Annotated[
        str,
        _doc(
            "CSV of camera_id,lat,lon[,site]: where each fixed camera is (a read's own position wins); "
            "cameras of one site are never compared"
        ),
    ] = ""
    list_id: Annotated[str, Meta(min_length=1, max_length=128, description="list_id of a clone hit's match")] = (
        "FEBLAM-CLONES"
    )
    priority: Annotated[int, Meta(ge=1, le=5, description="priority of a clone hit")] = 2
    action: Annotated[Action, _doc("action of a clone hit")] = "inform"
    owner: Annotated[str, _doc("owner of a clone hit's match (who answers for the check)")] = ""


class LoggingSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``[logging]``: level, format and the stats event."""

    level: Annotated[Literal["debug", "info", "warning", "error"], _doc("least severe level written")] = "info"
    format: Annotated[Literal["auto", "json", "console"], _doc("auto: console on a terminal, JSON otherwise")] = "auto"
    stats_seconds: Annotated[
        float,
        Meta(
            ge=0,
            le=86_400,
            description="one `stats` event (reads/s, hits, dead letters, lag, index) this often; 0: none",
        ),
    ] = 60.0


class HttpSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``[http]``: the /metrics, /live and /ready endpoints."""

    port: Annotated[
        int, Meta(ge=0, le=65535, description="/metrics, /live and /ready; cluster process i serves port + i; 0: off")
    ] = 9464
    host: Annotated[
        str,
        Meta(
            min_length=1,
            description="address the endpoints listen on (0.0.0.0 where a scraper outside the host needs them)",
        ),
    ] = "127.0.0.1"
    broker_timeout_seconds: Annotated[
        float, Meta(gt=0, le=3600, description="/ready turns 503 when the broker has not answered for this long")
    ] = 10.0
    live_timeout_seconds: Annotated[
        float,
        Meta(gt=0, le=3600, description="/live turns 503 when the running flow has not polled its input for this long"),
    ] = 30.0


Outcome = Literal["intercepted", "not_found", "false_read", "other"]
OUTCOMES: tuple[str, ...] = typing.get_args(Outcome)


class GatewaySettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``[gateway]``: the Hit Gateway (``feblam gateway``, DESIGN 12) and its console."""

    hits_topics: Annotated[
        tuple[str, ...], Meta(min_length=1, description="hits topics the gateway hands to the desks")
    ] = ("hits",)
    events_topic: Annotated[
        str, Meta(min_length=1, description="audit trail: one event per state change of a hit at a desk")
    ] = "hit-events"
    actions_topic: Annotated[
        str,
        Meta(
            min_length=1,
            description="what desks do in the console (acknowledge, close), read back by the gateway's flow",
        ),
    ] = "hit-actions"
    access_topic: Annotated[
        str,
        Meta(
            min_length=1,
            description="access audit: sign-ins, failed sign-ins, sign-outs, each hit shown to a user, refused requests",
        ),
    ] = "hit-access"
    http_port: Annotated[int, Meta(ge=0, le=65535, description="the console (and /metrics, /live, /ready); 0: off")] = (
        8600
    )
    http_host: Annotated[
        str, Meta(min_length=1, description="address the console listens on (put a TLS proxy in front of it)")
    ] = "127.0.0.1"
    escalate_after_seconds: Annotated[
        dict[Annotated[str, Meta(pattern="^[1-5]$")], Annotated[float, Meta(gt=0)]],
        _doc("by priority: a hit not acknowledged this long goes to the desk's escalate_to; absent: never"),
    ] = msgspec.field(default_factory=lambda: {"1": 60.0, "2": 120.0, "3": 600.0})
    max_message_bytes: Annotated[
        int,
        Meta(
            ge=1024,
            le=16 * 1024 * 1024,
            description="a message on the hits or actions topics larger than this is a dead letter, never decoded",
        ),
    ] = 256 * 1024
    max_hit_age_minutes: Annotated[
        float,
        Meta(
            gt=0,
            le=30 * 24 * 60,
            description="a hit emitted longer ago than this when the gateway takes it goes on no board (counted, logged): a first start on a topic with history",
        ),
    ] = 1440.0
    case_retention_hours: Annotated[
        float,
        Meta(
            gt=0,
            le=90 * 24,
            description="a hit leaves the state, the boards and the recovery store this long after its first case "
            "opened, closed or not, with an expired event per open case",
        ),
    ] = 72.0
    keep_closed_minutes: Annotated[
        float,
        Meta(
            gt=0,
            le=7 * 24 * 60,
            description="a hit whose every desk closed it leaves the board (and the state) after this long",
        ),
    ] = 720.0
    reopen_within_minutes: Annotated[
        float,
        Meta(
            ge=0,
            le=7 * 24 * 60,
            description="a new sighting of a vehicle whose case was closed less than this ago reopens that case "
            "(history kept) instead of opening a new one; 0: never",
        ),
    ] = 60.0
    realert_after_minutes: Annotated[
        float,
        Meta(
            ge=0,
            le=24 * 60,
            description="a sighting joining an open case alerts the desk again (sound, flash) only after this long "
            "without one, or when it comes from another region; 0: every sighting alerts",
        ),
    ] = 15.0
    alert_max_priority: Annotated[
        int,
        Meta(
            ge=0,
            le=5,
            description="the console sounds and flashes only for cases of this priority or more urgent; 0: never",
        ),
    ] = 2
    regions: Annotated[
        dict[Annotated[str, Meta(min_length=1, max_length=64)], Annotated[str, Meta(min_length=1, max_length=64)]],
        _doc(
            "camera id prefix -> region name, for the re-alert of a sighting from another region; absent: the "
            "desks' camera_prefixes are the regions"
        ),
    ] = msgspec.field(default_factory=dict)
    map_tiles_url: Annotated[
        str,
        Meta(
            pattern=r"^(https://[^\s]+\{z\}[^\s]*)?$",
            description="the force's map tile server (https://tiles.police.example/{z}/{x}/{y}.png): the trail "
            "on a map; empty: the trail as a list only",
        ),
    ] = ""
    quality_topic: Annotated[
        str,
        Meta(
            min_length=1,
            description="list quality for the lists' owners: an event when an entry is closed as false_read "
            "flag_false_reads times within flag_window_days",
        ),
    ] = "list-quality"
    flag_false_reads: Annotated[
        int, Meta(ge=1, le=1000, description="false reads of one entry within flag_window_days that flag it")
    ] = 3
    flag_window_days: Annotated[float, Meta(gt=0, le=365, description="the window of flag_false_reads")] = 30.0
    secure_cookies: Annotated[bool, _doc("session cookies only over HTTPS (false only for a console on localhost)")] = (
        True
    )
    action_key_file: Annotated[
        str,
        _doc(
            "file holding the secret the console signs actions with (HMAC-SHA256, 32 bytes or more); "
            "FEBLAM_GATEWAY_ACTION_KEY overrides it; empty: a key kept in recovery.dir (made on first start)"
        ),
    ] = ""
    session_idle_minutes: Annotated[
        float, Meta(gt=0, le=24 * 60, description="a session unused this long is signed out")
    ] = 720.0
    public_url: Annotated[
        str,
        Meta(
            pattern=r"^(https?://[^/?#]+/?)?$",
            description="the console's address as users reach it (https://gateway.police.example); set: "
            "only that Host and Origin are served; empty: any Host, and Origin must match it",
        ),
    ] = ""
    trusted_proxies: Annotated[
        tuple[str, ...],
        _doc("addresses or networks (CIDR) of the TLS proxies whose X-Forwarded-For is believed; empty: none"),
    ] = ()
    session_max_hours: Annotated[
        float, Meta(gt=0, le=7 * 24, description="a session ends this long after sign-in, however busy")
    ] = 12.0
    max_request_bytes: Annotated[
        int, Meta(ge=1024, le=16 * 1024 * 1024, description="a request body larger than this is refused (413)")
    ] = 64 * 1024
    max_streams_per_session: Annotated[
        int, Meta(ge=1, le=1000, description="open event streams of one session; more are refused (429)")
    ] = 8
    max_streams_per_desk: Annotated[
        int, Meta(ge=1, le=100_000, description="open event streams of one desk; more are refused (429)")
    ] = 200
    login_max_failures: Annotated[
        int,
        Meta(
            ge=1,
            le=1000,
            description="failed logins of one user name from one address before that pair is refused for login_window_seconds (an address: ten times as many)",
        ),
    ] = 5
    login_window_seconds: Annotated[float, Meta(gt=0, le=86_400, description="the window of login_max_failures")] = (
        300.0
    )
    webhook_deadletter_topic: Annotated[
        str,
        Meta(
            min_length=1,
            description="webhook deliveries that failed max_attempts times, kept for replay (needed when a desk has a webhook)",
        ),
    ] = "gateway-webhook-deadletter"
    client_cert_header: Annotated[
        str,
        Meta(
            pattern=r"^([A-Za-z0-9-]+)?$",
            description="header in which a TLS proxy of trusted_proxies passes a client certificate's subject "
            "(e.g. X-SSL-Client-S-DN); empty: clients use bearer tokens only",
        ),
    ] = ""
    api_page_size: Annotated[
        int, Meta(ge=1, le=1000, description="the most cases one page of GET /api/v1/cases returns")
    ] = 200
    standby: Annotated[
        bool,
        _doc(
            "a second gateway on a recovery.dir in use waits as a standby (/ready says standby) and takes over "
            "when the active one stops; false: it exits"
        ),
    ] = True


class UserSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A console user of a desk."""

    name: Annotated[str, Meta(pattern=r"^[A-Za-z0-9._@-]{1,64}$", description="login name, unique over all desks")]
    password_hash: Annotated[
        str,
        Meta(
            pattern=r"^\$argon2id\$",
            description="argon2id hash from `feblam gateway hash-password`; never the password",
        ),
    ]
    language: Annotated[
        Literal["", "en", "fr", "nl", "de"],
        _doc("the console's language for this user (en, fr, nl, de); empty: the browser's"),
    ] = ""


class ClientSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A system of a desk that uses the machine API (``/api/v1``): a CAD, a records system, a partner's."""

    name: Annotated[
        str,
        Meta(
            pattern=r"^[A-Za-z0-9._@-]{1,64}$", description="the client's name, unique over users and clients (audit)"
        ),
    ]
    token_sha256: Annotated[
        str,
        Meta(
            pattern=r"^([0-9a-f]{64})?$",
            description="SHA-256 (hex) of the client's bearer token, from `feblam gateway client-token`; never the token",
        ),
    ] = ""
    cert_subject: Annotated[
        str,
        Meta(
            max_length=512,
            description="the subject of the client's certificate, as the TLS proxy passes it in "
            "gateway.client_cert_header (instead of a token)",
        ),
    ] = ""


class WebhookSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A desk's webhook: every change of its cases POSTed, signed, in order."""

    url: Annotated[
        str,
        Meta(
            pattern=r"^https?://[^\s/?#]+[^\s]*$",
            description="where each change is POSTed (https; http only to a loopback address)",
        ),
    ]
    secret_env: Annotated[
        str,
        Meta(
            pattern=r"^([A-Z_][A-Z0-9_]*)?$",
            description="environment variable holding the signing secret (32 bytes or more); never the secret itself",
        ),
    ] = ""
    secret_file: Annotated[str, _doc("file holding the signing secret, instead of secret_env")] = ""
    max_attempts: Annotated[
        int, Meta(ge=1, le=100, description="tries of one delivery before it goes to webhook_deadletter_topic")
    ] = 6
    timeout_seconds: Annotated[float, Meta(gt=0, le=60, description="how long one delivery may take")] = 5.0
    backoff_seconds: Annotated[
        float, Meta(gt=0, le=60, description="the wait before the first retry; doubled at each retry (at most 60 s)")
    ] = 0.5


class DeskSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One ``[[desks]]``: a dispatch centre, zone or partner that acts on hits."""

    name: Annotated[str, Meta(pattern=r"^[A-Za-z0-9._-]{1,64}$", description="unique desk name (events, metrics)")]
    rule: Annotated[
        Rule, _doc("which hits the desk gets (a routing rule of DESIGN 6; the keys may also sit on the desk)")
    ] = msgspec.field(default_factory=Rule)
    users: Annotated[tuple[UserSettings, ...], _doc("who may log in for this desk")] = ()
    escalate_to: Annotated[str, _doc("desk that gets the desk's hits not acknowledged in time; empty: none")] = ""
    kind: Annotated[
        Literal["dispatch", "zone", "partner"],
        _doc("a dispatch centre, a police zone or a partner system (it sets the default of covert)"),
    ] = "dispatch"
    covert: Annotated[
        bool | None,
        _doc(
            "whether the desk may see covert (observe) matches; absent: true for dispatch and zone, false for partner"
        ),
    ] = None
    clients: Annotated[
        tuple[ClientSettings, ...], _doc("systems that use the machine API for this desk (/api/v1)")
    ] = ()
    webhook: Annotated[
        WebhookSettings | None, _doc("POST every change of the desk's cases to this URL, signed (HMAC-SHA256)")
    ] = None

    @property
    def sees_covert(self) -> bool:
        """``covert``, or the default of the desk's kind (DESIGN 12)."""
        return self.covert if self.covert is not None else self.kind != "partner"


class Settings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Every section: one typed, frozen settings object."""

    kafka: KafkaSettings = msgspec.field(default_factory=KafkaSettings)
    sources: tuple[SourceSettings, ...] = (
        SourceSettings("reads.vendor-a", "vendor-a"),
        SourceSettings("reads.vendor-b", "vendor-b"),
        SourceSettings("reads.vendor-c", "vendor-c"),
        SourceSettings("reads.canonical", "canonical"),
    )
    hotlists: HotlistSettings = msgspec.field(default_factory=HotlistSettings)
    dedup: DedupSettings = msgspec.field(default_factory=DedupSettings)
    deadletter: DeadletterSettings = msgspec.field(default_factory=DeadletterSettings)
    sinks: tuple[SinkSettings, ...] = (SinkSettings(name="all-hits", topic="hits"),)
    recovery: RecoverySettings = msgspec.field(default_factory=RecoverySettings)
    outputs: OutputSettings = msgspec.field(default_factory=OutputSettings)
    privacy: PrivacySettings = msgspec.field(default_factory=PrivacySettings)
    logging: LoggingSettings = msgspec.field(default_factory=LoggingSettings)
    http: HttpSettings = msgspec.field(default_factory=HttpSettings)
    retro: RetroSettings = msgspec.field(default_factory=RetroSettings)
    clones: CloneSettings = msgspec.field(default_factory=CloneSettings)
    vendors: VendorSettings = msgspec.field(default_factory=VendorSettings)
    gateway: GatewaySettings = msgspec.field(default_factory=GatewaySettings)
    desks: tuple[DeskSettings, ...] = ()

    def redacted(self) -> dict[str, Any]:
        """The settings as a dict with secrets masked, for logs and ``config show``."""
        return _redact(msgspec.to_builtins(self))

    def without_dedup(self) -> Settings:
        """These settings with duplicate suppression off (benchmarks, hit-for-hit comparisons)."""
        return replace(self, dedup=DedupSettings(window_seconds=0))


replace = msgspec.structs.replace

SECTIONS: dict[str, type[msgspec.Struct]] = {
    "kafka": KafkaSettings,
    "hotlists": HotlistSettings,
    "dedup": DedupSettings,
    "deadletter": DeadletterSettings,
    "recovery": RecoverySettings,
    "outputs": OutputSettings,
    "privacy": PrivacySettings,
    "logging": LoggingSettings,
    "http": HttpSettings,
    "retro": RetroSettings,
    "clones": CloneSettings,
    "vendors": VendorSettings,
    "gateway": GatewaySettings,
}
ARRAYS: dict[str, type[msgspec.Struct]] = {"sources": SourceSettings, "sinks": SinkSettings, "desks": DeskSettings}

#: Every environment override: variable -> (section, key, type).
ENV_KEYS: dict[str, tuple[str, str, Any]] = {
    f"FEBLAM_{section.upper()}_{f.name.upper()}": (section, f.name, f.type)
    for section, cls in SECTIONS.items()
    for f in msgspec.structs.fields(cls)
}


def _redact(doc: Any) -> Any:
    if isinstance(doc, dict):
        return {k: ("***" if k in SECRET_KEYS and v else _redact(v)) for k, v in doc.items()}
    if isinstance(doc, list | tuple):  # tuples too: the desks' users are one (their password hashes)
        return [_redact(v) for v in doc]
    return doc


# ---------------------------------------------------------------- validation


def _problem(where: str, exc: msgspec.ValidationError, value: Any = msgspec.UNSET) -> str:
    """``where: message`` from a msgspec error, with the path it names appended to ``where``."""
    text = str(exc)
    message, _, path = text.partition(" - at `$")
    path = path.rstrip("`")
    for name, index in re.findall(r"\.(\w+)|\[(\d+)\]", path):  # the offending value inside a table
        try:
            value = value[name] if name else value[int(index)]
        except (KeyError, IndexError, TypeError):
            value = msgspec.UNSET
            break
    where = where + path
    secret = where.rpartition(".")[2] in SECRET_KEYS  # a password pasted into password_hash is never echoed
    shown = "" if secret or value is msgspec.UNSET or isinstance(value, dict | list) else f" = {value!r}"
    return f"{where}{shown}: {message[0].lower()}{message[1:]}"


def _convert(value: Any, typ: Any, where: str, problems: list[str], *, strict: bool = True) -> Any:
    try:
        return msgspec.convert(value, typ, strict=strict)
    except msgspec.ValidationError as exc:
        problems.append(_problem(where, exc, value))
        return msgspec.UNSET


def _check_table(doc: Any, cls: type[msgspec.Struct], where: str, problems: list[str]) -> None:
    """Every key of one table on its own, so that each bad key is reported."""
    if not isinstance(doc, dict):
        problems.append(f"{where}: expected a table, got {doc!r}")
        return
    fields = {f.name: f for f in msgspec.structs.fields(cls)}
    for key, value in doc.items():
        if key not in fields:
            close = difflib.get_close_matches(key, fields, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f" (known: {', '.join(fields)})"
            problems.append(f"{where}.{key}: unknown key{hint}")
        else:
            _convert(value, fields[key].type, f"{where}.{key}", problems)
    missing = [f.name for f in fields.values() if f.required and f.name not in doc]
    for key in missing:
        problems.append(f"{where}.{key}: missing (required)")


def _lift_rule(sink: Any) -> Any:
    """Rule keys may sit on the sink itself: move them into its ``rule`` table."""
    if not isinstance(sink, dict):
        return sink
    rule_keys = {f.name for f in msgspec.structs.fields(Rule)}
    lifted = {k: v for k, v in sink.items() if k in rule_keys}
    if not lifted:
        return sink
    rest = {k: v for k, v in sink.items() if k not in rule_keys}
    rule = rest.get("rule", {})
    rest["rule"] = {**rule, **lifted} if isinstance(rule, dict) else rule
    return rest


def _semantic_problems(settings: Settings, origin: str) -> list[str]:
    problems: list[str] = [f"{origin}: {p}" for p in settings.kafka.security_problems()]
    for i, sink in enumerate(settings.sinks):
        given = [k for k in ("topic", "path", "parquet_dir") if getattr(sink, k)]
        if len(given) != 1:
            problems.append(
                f"{origin}: sinks[{i}] ({sink.name}): give exactly one of topic, path or parquet_dir (got {given or 'none'})"
            )
    names = [s.name for s in settings.sinks]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"{origin}: sinks: name {name!r} is used twice; sink names must be unique")
    topics = [s.topic for s in settings.sources]
    for topic in sorted({t for t in topics if topics.count(t) > 1}):
        problems.append(f"{origin}: sources: topic {topic!r} is listed twice")
    if not settings.sources:
        problems.append(f"{origin}: sources: at least one [[sources]] is needed")
    hot = settings.hotlists
    for list_id, topic in sorted(hot.list_changes_topics.items()):
        if not topic.strip() or topic != topic.strip():
            problems.append(f"{origin}: hotlists.list_changes_topics.{list_id}: {topic!r} is not a topic name")
        elif topic == hot.changes_topic:
            problems.append(
                f"{origin}: hotlists.list_changes_topics.{list_id}: {topic!r} is hotlists.changes_topic, the shared "
                "topic; a list's own topic is one no other source writes to"
            )
    if not settings.sinks:
        problems.append(f"{origin}: sinks: at least one [[sinks]] is needed, or every hit would be lost")
    if not settings.deadletter.topic and not settings.deadletter.path:
        problems.append(f"{origin}: deadletter: give topic or path, or dead letters would be lost")
    if settings.deadletter.topic and settings.deadletter.path:
        problems.append(f"{origin}: deadletter: give one of topic or path, not both")
    if settings.clones.enabled and settings.clones.cameras:
        from sources.cameras import load_cameras

        try:
            load_cameras(settings.clones.cameras)
        except ConfigError as exc:
            problems.append(f"{origin}: clones.cameras: {exc}")
    return problems + _vendor_problems(settings, origin) + _desk_problems(settings, origin)


def _vendor_problems(settings: Settings, origin: str) -> list[str]:
    """Every mapping of ``vendors.dir`` compiles, and each source names a vendor that exists."""
    from sources.mapping import mapping_files

    try:
        mapped = mapping_files(settings.vendors.dir)
    except ConfigError as exc:
        return [f"{origin}: vendors.dir: {line}" for line in str(exc).splitlines()]
    problems = []
    for i, source in enumerate(settings.sources):
        if source.vendor not in VENDOR_NAMES and source.vendor not in mapped:
            where = f" and no {source.vendor}.toml in {settings.vendors.dir}" if settings.vendors.dir else ""
            problems.append(
                f"{origin}: sources[{i}].vendor = {source.vendor!r}: not a built-in vendor "
                f"({', '.join(VENDOR_NAMES)}){where}; a new vendor is a mapping file in vendors.dir"
            )
    return problems


def _desk_problems(settings: Settings, origin: str) -> list[str]:
    problems: list[str] = []
    desks = [d.name for d in settings.desks]
    for name in sorted({n for n in desks if desks.count(n) > 1}):
        problems.append(f"{origin}: desks: name {name!r} is used twice; desk names must be unique")
    users = [u.name for d in settings.desks for u in d.users]
    for name in sorted({n for n in users if users.count(n) > 1}):
        problems.append(f"{origin}: desks: user {name!r} is listed twice; a user belongs to one desk")
    for i, desk in enumerate(settings.desks):
        if desk.escalate_to == desk.name:
            problems.append(f"{origin}: desks[{i}] ({desk.name}).escalate_to: a desk cannot escalate to itself")
        elif desk.escalate_to and desk.escalate_to not in desks:
            problems.append(
                f"{origin}: desks[{i}] ({desk.name}).escalate_to = {desk.escalate_to!r}: no such desk (desks: {', '.join(desks)})"
            )
    clients = [c.name for d in settings.desks for c in d.clients]
    for name in sorted({n for n in clients if clients.count(n) > 1 or n in users}):
        problems.append(
            f"{origin}: desks: client {name!r} is listed twice or is also a user; every name in the audit is one party"
        )
    kinds = {d.name: d.kind for d in settings.desks}
    for i, desk in enumerate(settings.desks):
        where = f"{origin}: desks[{i}] ({desk.name})"
        if kinds.get(desk.escalate_to) == "partner":
            problems.append(
                f"{where}.escalate_to = {desk.escalate_to!r}: that desk is a partner; a police desk's cases never "
                "escalate to a partner"
            )
        if desk.kind == "partner" and not desk.rule.lists and not desk.rule.owners:
            problems.append(
                f"{where}: a partner takes its own lists only; name them in lists = [...] or owners = [...] "
                "(the desk's rule), or it would get every hit"
            )
        for j, c in enumerate(desk.clients):
            if bool(c.token_sha256) == bool(c.cert_subject):
                problems.append(f"{where}.clients[{j}] ({c.name}): give one of token_sha256 or cert_subject")
            if c.cert_subject and not settings.gateway.client_cert_header:
                problems.append(
                    f"{where}.clients[{j}] ({c.name}).cert_subject: set gateway.client_cert_header, the header in "
                    "which the TLS proxy passes the certificate's subject"
                )
        hook = desk.webhook
        if hook is not None:
            if bool(hook.secret_env) == bool(hook.secret_file):
                problems.append(f"{where}.webhook: give one of secret_env or secret_file")
            parts = urlsplit(hook.url)
            if parts.scheme == "http" and not _loopback(parts.hostname or ""):
                problems.append(
                    f"{where}.webhook.url = {hook.url!r}: plain http only to a loopback address; a hit crosses the "
                    "network over https"
                )
    g = settings.gateway
    if not g.secure_cookies and g.http_port and not _loopback(g.http_host):
        problems.append(
            f"{origin}: gateway.secure_cookies = false with http_host {g.http_host}: session cookies would cross the "
            "network in clear; keep secure_cookies = true behind a TLS proxy (false is for a console on loopback)"
        )
    for proxy in g.trusted_proxies:
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            problems.append(f"{origin}: gateway.trusted_proxies: {proxy!r} is not an address or a network (CIDR)")
    named = [*g.hits_topics, g.events_topic, g.actions_topic, g.access_topic, g.quality_topic]
    if any(d.webhook for d in settings.desks):
        named.append(g.webhook_deadletter_topic)
    if len(set(named)) != len(named):
        problems.append(
            f"{origin}: gateway: hits_topics, events_topic, actions_topic, access_topic, quality_topic and "
            "webhook_deadletter_topic must be different topics"
        )
    return problems


def check_config(
    doc: Mapping[str, Any], origin: str = "config", environ: Mapping[str, str] | None = None
) -> tuple[Settings | None, list[str]]:
    """The settings of a parsed TOML document and environment, and one line per bad key (empty: valid)."""
    problems: list[str] = []
    doc = {
        k: ([_lift_rule(s) for s in v] if k in ("sinks", "desks") and isinstance(v, list) else v)
        for k, v in doc.items()
    }
    for key, value in doc.items():
        if key in SECTIONS:
            _check_table(value, SECTIONS[key], f"{origin}: {key}", problems)
        elif key in ARRAYS:
            if not isinstance(value, list):
                problems.append(f"{origin}: {key}: expected an array of tables ([[{key}]]), got {value!r}")
                continue
            for i, item in enumerate(value):
                _check_table(item, ARRAYS[key], f"{origin}: {key}[{i}]", problems)
        else:
            close = difflib.get_close_matches(key, [*SECTIONS, *ARRAYS], n=1)
            hint = f"; did you mean [{close[0]}]?" if close else ""
            problems.append(f"{origin}: [{key}]: unknown section{hint}")
    env = os.environ if environ is None else environ
    for var in sorted(env):
        if var.startswith("FEBLAM_") and var not in ENV_KEYS and var not in OTHER_ENV:
            close = difflib.get_close_matches(var, ENV_KEYS, n=1)
            hint = f"; did you mean {close[0]}?" if close else " (see `feblam config-env`)"
            problems.append(f"{var}: unknown environment variable{hint}")
    if problems:
        return None, problems
    settings = msgspec.convert(doc, Settings)
    for var, (section, key, typ) in ENV_KEYS.items():
        if var in env:
            value = _convert(env[var], typ, var, problems, strict=False)
            if value is not msgspec.UNSET:
                settings = replace(settings, **{section: replace(getattr(settings, section), **{key: value})})
    if problems:
        return None, problems
    settings = _deadletter_path_alone(settings, doc, env)
    problems = _semantic_problems(settings, origin)
    return (None if problems else settings), problems


def _deadletter_path_alone(settings: Settings, doc: Mapping[str, Any], env: Mapping[str, str]) -> Settings:
    """``[deadletter] path`` given without a topic (DESIGN 8: ``topic = ...`` or ``path = ...``): the file alone,
    not the file and the default topic."""
    section = doc.get("deadletter")
    dl: Mapping[str, Any] = section if isinstance(section, dict) else {}
    topic_given = "topic" in dl or "FEBLAM_DEADLETTER_TOPIC" in env
    if settings.deadletter.path and not topic_given:
        return replace(settings, deadletter=replace(settings.deadletter, topic=""))
    return settings


def _without_none(doc: Any) -> Any:
    if isinstance(doc, dict):
        return {k: _without_none(v) for k, v in doc.items() if v is not None}
    if isinstance(doc, list | tuple):
        return [_without_none(v) for v in doc]
    return doc


def settings_toml(settings: Settings) -> str:
    """The settings as a TOML file that loads back to the same settings (for a child process)."""
    import tomli_w

    return tomli_w.dumps(_without_none(msgspec.to_builtins(settings)))


def read_toml(path: str | Path) -> dict[str, Any]:
    """A TOML file as a dict; a missing or invalid file is one ConfigError naming it."""
    p = Path(path)
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        msg = f"{p}: configuration file not found"
        raise ConfigError(msg) from None
    except IsADirectoryError:
        msg = f"{p}: is a directory, not a configuration file"
        raise ConfigError(msg) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        msg = f"{p}: not valid TOML: {exc}"
        raise ConfigError(msg) from None


def settings_from_dict(
    doc: Mapping[str, Any], origin: str = "config", environ: Mapping[str, str] | None = None
) -> Settings:
    """Settings from a parsed document (environment ignored unless given); every bad key in one ConfigError."""
    settings, problems = check_config(doc, origin, {} if environ is None else environ)
    if settings is None:
        raise ConfigError("\n".join(problems))
    return settings


def load_settings(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Defaults, then the TOML file (if any), then ``FEBLAM_*`` environment variables."""
    doc = {} if path is None else read_toml(path)
    settings, problems = check_config(doc, str(path) if path is not None else "defaults", environ)
    if settings is None:
        raise ConfigError("\n".join(problems))
    return settings


# ---------------------------------------------------------------- reference


def describe_type(tp: Any) -> tuple[str, str, str]:
    """(type, allowed values or range, description) of a field type."""
    desc, allowed = "", []
    if typing.get_origin(tp) is Annotated:
        tp, *metas = typing.get_args(tp)
        for meta in metas:
            if isinstance(meta, Meta):
                desc = meta.description or desc
                for attr, sym in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
                    if getattr(meta, attr) is not None:
                        allowed.append(f"{sym} {getattr(meta, attr)}")
                if meta.pattern:
                    allowed.append(meta.pattern.strip("^$()").replace("|", " \\| "))
                if meta.min_length:
                    allowed.append("not empty" if meta.min_length == 1 else f"length >= {meta.min_length}")
        inner_type, inner_allowed, inner_desc = describe_type(tp)
        return inner_type, ", ".join([inner_allowed, *allowed] if inner_allowed else allowed), desc or inner_desc
    if typing.get_origin(tp) is Literal:
        return "str", " \\| ".join(f"`{v!r}`" if v else "`''`" for v in typing.get_args(tp)), ""
    if typing.get_origin(tp) is tuple:
        inner = describe_type(typing.get_args(tp)[0])
        return f"list of {inner[0]}", inner[1], ""
    return getattr(tp, "__name__", str(tp)), "", ""


def _table_rows(cls: type[msgspec.Struct], prefix: str, env_section: str | None) -> list[str]:
    rows = []
    for f in msgspec.structs.fields(cls):
        typ, allowed, desc = describe_type(f.type)
        if f.default_factory is not msgspec.NODEFAULT:
            default: Any = "see below" if typ == "Rule" else f.default_factory()
        else:
            default = "required" if f.default is msgspec.NODEFAULT else f.default
        default_text = (
            default
            if default == "required" or default == "see below"
            else f"`{msgspec.json.encode(msgspec.to_builtins(default)).decode()}`"
        )
        env = f"`FEBLAM_{env_section.upper()}_{f.name.upper()}`" if env_section else ""
        rows.append(f"| `{prefix}{f.name}` | {typ} | {allowed} | {default_text} | {env} | {desc} |")
    return rows


def reference_markdown() -> str:
    """``docs/configuration.md``, generated from the schema (a test keeps the file equal to it)."""
    head = "| key | type | allowed | default | environment | meaning |\n|---|---|---|---|---|---|"
    out = [
        "# Configuration reference",
        "",
        "Generated from `feblam/config.py` by `feblam config reference`; do not edit by hand.",
        "",
        "`feblam run --config feblam.toml` reads TOML. Every key has a default; `FEBLAM_<SECTION>_<KEY>`",
        "environment variables override the file. Unknown keys, unknown `FEBLAM_*` variables and values",
        "out of range are errors: `feblam config check --config FILE` names each one, and `feblam config show`",
        "prints the effective settings with secrets masked.",
        "",
    ]
    for section, cls in SECTIONS.items():
        out += [f"## [{section}]", "", head, *_table_rows(cls, "", section), ""]
    out += ["## [[sources]] (one per camera-vendor topic)", "", head, *_table_rows(SourceSettings, "", None), ""]
    out += [
        "## [[sinks]] (a hit goes to every sink whose rule takes it)",
        "",
        head,
        *_table_rows(SinkSettings, "", None),
        "",
    ]
    out += ["### rule (`rule = { … }` or the keys on the sink itself)", "", head, *_table_rows(Rule, "", None), ""]
    out += [
        "## [[desks]] (`feblam gateway`: a desk gets every hit its rule takes)",
        "",
        head,
        *_table_rows(DeskSettings, "", None),
        "",
    ]
    out += [
        "### users (`users = [ { name = …, password_hash = … } ]`)",
        "",
        head,
        *_table_rows(UserSettings, "", None),
        "",
    ]
    return "\n".join(out)


assert set(typing.get_args(Action)) == ACTIONS  # noqa: S101 - one definition of the actions, pinned at import
