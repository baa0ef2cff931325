"""Typed, frozen settings from a TOML file, overridable by ``FEBLAM_<SECTION>_<KEY>``.

Every key has a default, so ``feblam demo`` and ``feblam replay`` need no file.
The environment variables are listed once, in :data:`ENV_KEYS` (generated from
the dataclasses below); ``feblam config-env`` prints them.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from feblam.errors import ConfigError
from feblam.model import ACTIONS

SECRET_KEYS = frozenset({"sasl_password", "hash_key", "ssl_key_password"})


@dataclass(frozen=True, slots=True)
class KafkaSettings:
    brokers: str = "127.0.0.1:9092"
    security_protocol: str = "plaintext"
    sasl_mechanism: str = ""
    sasl_username: str = ""
    sasl_password: str = ""
    ssl_ca_location: str = ""
    batch_size: int = 5000
    poll_timeout_ms: int = 50  # how long an idle partition waits before it is polled again
    fetch_wait_ms: int = 10  # broker long-poll bound; raise it (e.g. 100) on a Kafka that answers on arrival
    start: str = "earliest"  # where a partition with no stored offset starts: earliest | latest
    linger_ms: int = 5
    client_id: str = "feblam"

    def client_config(self) -> dict[str, Any]:
        """librdkafka settings shared by consumers and producers."""
        conf: dict[str, Any] = {
            "bootstrap.servers": self.brokers,
            "security.protocol": self.security_protocol,
            "client.id": self.client_id,
            "log.connection.close": False,
        }
        if self.sasl_mechanism:
            conf["sasl.mechanism"] = self.sasl_mechanism
            conf["sasl.username"] = self.sasl_username
            conf["sasl.password"] = self.sasl_password
        if self.ssl_ca_location:
            conf["ssl.ca.location"] = self.ssl_ca_location
        return conf


@dataclass(frozen=True, slots=True)
class SourceSettings:
    topic: str
    vendor: str


@dataclass(frozen=True, slots=True)
class HotlistSettings:
    dir: str = "hotlists/"
    poll_seconds: float = 10.0
    shards: int = 31
    bloom_backend: str = "rbloom"
    bloom_fp_rate: float = 0.001
    #: Build new versions in a child process into this directory and memory-map them
    #: (shared by every process on the machine). Empty: a folder in the system temp dir.
    cache_dir: str = ""
    #: false: build in the job's own process (small lists, tests).
    shared_build: bool = True
    #: New delta files are applied as a layer over the last full version (no full rebuild)
    #: while their bytes stay under this fraction of the snapshot files it was built
    #: from; beyond that, or when a full snapshot or list.toml changes, a full rebuild. 0: always full.
    layer_max_fraction: float = 0.2


@dataclass(frozen=True, slots=True)
class DedupSettings:
    window_seconds: float = 300.0


@dataclass(frozen=True, slots=True)
class DeadletterSettings:
    topic: str = "reads.deadletter"
    path: str = ""


@dataclass(frozen=True, slots=True)
class Rule:
    """Which hits a sink takes; every condition given must hold (empty = any).

    The match-level conditions (priority, category, action, list, owner) must
    hold together for at least one match of the hit.
    """

    max_priority: int = 5
    categories: tuple[str, ...] = ()
    actions: tuple[str, ...] = ()
    lists: tuple[str, ...] = ()
    owners: tuple[str, ...] = ()
    camera_prefixes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SinkSettings:
    name: str
    topic: str = ""
    path: str = ""
    rule: Rule = field(default_factory=Rule)


@dataclass(frozen=True, slots=True)
class RecoverySettings:
    dir: str = ""
    #: Bytewax epoch length: how often state is snapshotted and sinks flushed.
    #: Short epochs keep the end-of-epoch work small (p99 latency) and replays short.
    snapshot_seconds: float = 2.0
    backup_seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class PrivacySettings:
    #: Key of the keyed hash used for plate references in logs and Kafka message
    #: keys. Set the same value on every process of a deployment.
    hash_key: str = "feblam-development-key-change-me"


@dataclass(frozen=True, slots=True)
class LoggingSettings:
    level: str = "info"
    format: str = "auto"  # auto | json | console


@dataclass(frozen=True, slots=True)
class Settings:
    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    sources: tuple[SourceSettings, ...] = (
        SourceSettings("reads.vendor-a", "vendor-a"),
        SourceSettings("reads.vendor-b", "vendor-b"),
        SourceSettings("reads.vendor-c", "vendor-c"),
        SourceSettings("reads.canonical", "canonical"),
    )
    hotlists: HotlistSettings = field(default_factory=HotlistSettings)
    dedup: DedupSettings = field(default_factory=DedupSettings)
    deadletter: DeadletterSettings = field(default_factory=DeadletterSettings)
    sinks: tuple[SinkSettings, ...] = (SinkSettings(name="all-hits", topic="hits"),)
    recovery: RecoverySettings = field(default_factory=RecoverySettings)
    privacy: PrivacySettings = field(default_factory=PrivacySettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)

    def redacted(self) -> dict[str, Any]:
        """The settings as a dict with secrets masked, for logs and ``--print-config``."""
        return _redact(_asdict(self))


_SECTIONS: dict[str, type] = {
    "kafka": KafkaSettings,
    "hotlists": HotlistSettings,
    "dedup": DedupSettings,
    "deadletter": DeadletterSettings,
    "recovery": RecoverySettings,
    "privacy": PrivacySettings,
    "logging": LoggingSettings,
}

#: Every environment override: variable -> (section, key, type).
ENV_KEYS: dict[str, tuple[str, str, type]] = {
    f"FEBLAM_{section.upper()}_{f.name.upper()}": (section, f.name, type(getattr(cls(), f.name)))
    for section, cls in _SECTIONS.items()
    for f in fields(cls)
}


def _asdict(obj: Any) -> Any:
    if hasattr(obj, "__dataclass_fields__"):
        return {f.name: _asdict(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, tuple):
        return [_asdict(v) for v in obj]
    return obj


def _redact(doc: Any) -> Any:
    if isinstance(doc, dict):
        return {k: ("***" if k in SECRET_KEYS and v else _redact(v)) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_redact(v) for v in doc]
    return doc


def _coerce(value: Any, typ: type, where: str) -> Any:
    if typ is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"1", "true", "yes", "on", "0", "false", "no", "off"}:
            return value.lower() in {"1", "true", "yes", "on"}
    elif typ is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
    elif typ is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif typ is str:
        if isinstance(value, str):
            return value
    msg = f"{where}: {value!r} is not a valid {typ.__name__}"
    raise ConfigError(msg)


def _section(cls: type, doc: Mapping[str, Any], where: str) -> Any:
    known = {f.name: f for f in fields(cls)}
    unknown = set(doc) - set(known)
    if unknown:
        msg = f"{where}: unknown key(s) {', '.join(sorted(unknown))} (known: {', '.join(known)})"
        raise ConfigError(msg)
    defaults = cls()
    values = {k: _coerce(v, type(getattr(defaults, k)), f"{where}.{k}") for k, v in doc.items()}
    return replace(defaults, **values)


def _str_list(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        msg = f"{where}: {value!r} is not a list of strings"
        raise ConfigError(msg)
    return tuple(value)


def _sink(doc: Mapping[str, Any], where: str) -> SinkSettings:
    doc = dict(doc)
    name = doc.pop("name", None)
    topic = doc.pop("topic", "")
    path = doc.pop("path", "")
    if not isinstance(name, str) or not name:
        msg = f"{where}: a sink needs a name"
        raise ConfigError(msg)
    if bool(topic) == bool(path):
        msg = f"{where} ({name}): give exactly one of topic or path"
        raise ConfigError(msg)
    rule_doc = dict(doc.pop("rule", {}))
    rule_doc.update(doc)  # rule keys may sit on the sink itself
    rule_keys = {f.name for f in fields(Rule)}
    unknown = set(rule_doc) - rule_keys
    if unknown:
        msg = f"{where} ({name}): unknown key(s) {', '.join(sorted(unknown))}"
        raise ConfigError(msg)
    max_priority = _coerce(rule_doc.pop("max_priority", 5), int, f"{where}.max_priority")
    if not 1 <= max_priority <= 5:
        msg = f"{where}.max_priority: {max_priority} is not 1..5"
        raise ConfigError(msg)
    lists = {k: _str_list(v, f"{where}.{k}") for k, v in rule_doc.items()}
    bad_actions = set(lists.get("actions", ())) - ACTIONS
    if bad_actions:
        msg = f"{where}.actions: {', '.join(sorted(bad_actions))} is not one of {', '.join(sorted(ACTIONS))}"
        raise ConfigError(msg)
    return SinkSettings(name=name, topic=topic, path=path, rule=Rule(max_priority=max_priority, **lists))


def settings_from_dict(doc: Mapping[str, Any], origin: str = "config") -> Settings:
    doc = dict(doc)
    kwargs: dict[str, Any] = {}
    for section, cls in _SECTIONS.items():
        if section in doc:
            sub = doc.pop(section)
            if not isinstance(sub, dict):
                msg = f"{origin}: [{section}] is not a table"
                raise ConfigError(msg)
            kwargs[section] = _section(cls, sub, f"{origin}: {section}")
    if "sources" in doc:
        sources = []
        for i, s in enumerate(doc.pop("sources")):
            where = f"{origin}: sources[{i}]"
            if not isinstance(s, dict) or set(s) != {"topic", "vendor"}:
                msg = f"{where}: needs exactly topic and vendor"
                raise ConfigError(msg)
            sources.append(SourceSettings(_coerce(s["topic"], str, where), _coerce(s["vendor"], str, where)))
        kwargs["sources"] = tuple(sources)
    if "sinks" in doc:
        kwargs["sinks"] = tuple(_sink(s, f"{origin}: sinks[{i}]") for i, s in enumerate(doc.pop("sinks")))
    if doc:
        msg = f"{origin}: unknown section(s) {', '.join(sorted(doc))}"
        raise ConfigError(msg)
    settings = Settings(**kwargs)
    from sources.vendors import VENDORS

    for s in settings.sources:
        if s.vendor not in VENDORS:
            msg = f"{origin}: source {s.topic!r}: unknown vendor {s.vendor!r} (known: {', '.join(VENDORS)})"
            raise ConfigError(msg)
    names = [s.name for s in settings.sinks]
    if len(set(names)) != len(names):
        msg = f"{origin}: sink names must be unique, got {names}"
        raise ConfigError(msg)
    return settings


def apply_env(settings: Settings, environ: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    for var, (section, key, typ) in ENV_KEYS.items():
        if var in env:
            current = getattr(settings, section)
            value = _coerce(env[var], typ, var)
            settings = replace(settings, **{section: replace(current, **{key: value})})
    return settings


def load_settings(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Defaults, then the TOML file (if any), then ``FEBLAM_*`` environment variables."""
    if path is None:
        return apply_env(Settings(), environ)
    p = Path(path)
    try:
        doc = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        msg = f"{p}: configuration file not found"
        raise ConfigError(msg) from None
    except tomllib.TOMLDecodeError as exc:
        msg = f"{p}: not valid TOML: {exc}"
        raise ConfigError(msg) from None
    return apply_env(settings_from_dict(doc, str(p)), environ)
