"""The ``feblam`` command line (DESIGN section 7)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from feblam import logs
from feblam.config import ENV_KEYS, Settings, load_settings, refuse_development_key, replace
from feblam.errors import EXIT_USAGE, FeblamError
from feblam.version import versions


def _err(message: str) -> int:
    print(f"feblam: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _settings(args: argparse.Namespace) -> Settings:
    settings = load_settings(getattr(args, "config", None))
    if getattr(args, "http_port", None) is not None:
        if not 0 <= args.http_port <= 65535:
            msg = f"--http-port {args.http_port}: not a port (0..65535; 0: off)"
            raise FeblamError(msg)
        settings = replace(settings, http=replace(settings.http, port=args.http_port))
    logs.configure(settings.logging.level if not getattr(args, "quiet", False) else "warning", settings.logging.format)
    logs.set_hash_key(settings.privacy.hash_key)
    from sources.mapping import register

    register(settings.vendors.dir)  # the mapped vendors join the built-in ones (checked already by load_settings)
    return settings


# ---------------------------------------------------------------- normalize


def cmd_normalize(args: argparse.Namespace) -> int:
    """``feblam normalize``: the key, fuzzy key and country of one plate."""
    from matchers.normalize import country_code, fuzzy_key, plate_key

    key = plate_key(args.plate)
    doc = {
        "key": key,
        "fuzzy": fuzzy_key(key),
        "country": country_code(args.country),
    }
    if args.json:
        print(orjson.dumps(doc).decode())
    else:
        for name, value in doc.items():
            print(f"{name:<8} {value if value is not None else '-'}")
    if not key:
        return _err(f"plate {args.plate!r} has no letter or digit")
    return 0


# ---------------------------------------------------------------- replay


def _parse_inputs(values: Sequence[str]) -> list[tuple[str, str]]:
    from sources.vendors import VENDORS

    inputs = []
    for value in values:
        vendor, sep, path = value.partition("=")
        if not sep or not path:
            msg = f"--input {value!r}: expected VENDOR=PATH"
            raise FeblamError(msg)
        if vendor not in VENDORS:
            msg = f"--input {value!r}: unknown vendor {vendor!r} (one of {', '.join(VENDORS)})"
            raise FeblamError(msg)
        inputs.append((vendor, path))
    return inputs


def cmd_replay(args: argparse.Namespace) -> int:
    """``feblam replay``: the dataflow over files (DESIGN section 7)."""
    from flows.replay import run_replay

    settings = _settings(args)
    hot = replace(settings.hotlists, dir=args.hotlists)
    dedup = settings.dedup if args.dedup_window is None else replace(settings.dedup, window_seconds=args.dedup_window)
    settings = replace(settings, hotlists=hot, dedup=dedup)
    out = Path(args.out)
    dlq = Path(args.dlq) if args.dlq else out.with_name(out.stem + ".deadletter.jsonl")
    stats, version = run_replay(settings, _parse_inputs(args.input), out, dlq)
    print(
        f"reads={stats.reads} hits={stats.hits} deadletter={stats.deadletters} "
        f"suppressed={stats.suppressed} index_version={version}"
    )
    return 0


# ---------------------------------------------------------------- index


def _progress_bar(label: str) -> Any:
    if not sys.stderr.isatty():
        return None
    from rich.progress import Progress

    bar = Progress(transient=True)
    task = bar.add_task(label, total=1.0)
    bar.start()

    def update(step: str, frac: float) -> None:
        bar.update(task, completed=frac, description=f"{label}: {step}")
        if frac >= 1.0:
            bar.stop()

    return update


def _load_any_index(args: argparse.Namespace, settings: Settings) -> Any:
    from matchers.build import load_index

    if getattr(args, "index", None):
        from matchers.store import open_version

        return open_version(args.index)  # a full version or a layer over one
    hot = replace(settings.hotlists, dir=args.hotlists or settings.hotlists.dir)
    if getattr(args, "shards", None):
        hot = replace(hot, shards=args.shards)
    if getattr(args, "bloom", None):
        hot = replace(hot, bloom_backend=args.bloom)
    return load_index(hot, progress=_progress_bar("building index"))


def _probe_time(text: str | None) -> datetime:
    from feblam.serde import parse_ts

    try:
        return parse_ts(text) if text else datetime.now(UTC)
    except ValueError:
        msg = f"--at {text!r}: not an ISO 8601 time (e.g. 2026-11-28T13:00:00Z)"
        raise FeblamError(msg) from None


def _build_and_publish(args: argparse.Namespace, settings: Settings) -> int:
    import signal
    import threading

    from matchers.refresh import watch_and_publish

    if not args.out:
        return _err("index build --watch needs --out DIR (the versions folder jobs map with [hotlists] versions_dir)")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    hot = replace(settings.hotlists, dir=args.hotlists or settings.hotlists.dir)
    watch_and_publish(hot, args.out, stop)
    return 0


def cmd_index(args: argparse.Namespace) -> int:
    """``feblam index build|stats|probe|allow-shrink``."""
    settings = _settings(args)
    if args.index_cmd == "allow-shrink":
        from matchers.shrink import allow_shrink

        path = allow_shrink(args.hotlists or settings.hotlists.dir, args.list_id)
        print(f"{args.list_id}: the next full snapshot may shrink the list ({path}); the permit is used once")
        return 0
    if args.index_cmd == "build" and args.watch:
        return _build_and_publish(args, settings)
    if args.index_cmd == "build":
        from matchers.store import save_index

        index = _load_any_index(args, settings)
        if args.out:
            save_index(index, args.out)
        print(orjson.dumps(index.stats(), option=orjson.OPT_INDENT_2).decode())
        return 0
    at = _probe_time(getattr(args, "at", None))
    index = _load_any_index(args, settings)
    if args.index_cmd == "stats":
        print(orjson.dumps(index.stats(), option=orjson.OPT_INDENT_2).decode())
        return 0
    # probe
    from feblam.serde import format_ts, match_to_dict
    from matchers.normalize import country_code, fuzzy_key, plate_key

    key = plate_key(args.plate)
    if not key:
        return _err(f"plate {args.plate!r} has no letter or digit")
    country = country_code(args.country)
    matches = index.probe(key, country, at)
    doc = {
        "key": key,
        "fuzzy": fuzzy_key(key),
        "country": country,
        "at": format_ts(at),
        "index_version": index.version,
        "matches": [match_to_dict(m) for m in matches],
    }
    print(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
    return 0


# ---------------------------------------------------------------- run, demo, bench


def cmd_run(args: argparse.Namespace) -> int:
    """``feblam run``: the long-running job."""
    import signal

    # Before any library starts a thread (Arrow's pools): SIGTERM/SIGINT are taken by the job's
    # stopper thread (flows.service.Stopper), also while Bytewax's Rust code forms a cluster.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    from flows.run import run_job

    settings = _settings(args)
    refuse_development_key(settings, "run")
    return run_job(settings, workers=args.workers, process_id=args.process_id, addresses=args.addresses)


def cmd_gateway(args: argparse.Namespace) -> int:
    """``feblam gateway``: the Hit Gateway and its console; ``feblam gateway hash-password``: a user's hash."""
    if getattr(args, "gateway_cmd", None) == "audit":
        from gateway.audit import audit

        return audit(_settings(args), hit=args.hit, user=args.user, day=args.day)
    if getattr(args, "gateway_cmd", None) == "report":
        from gateway.report import parse_since, report

        parse_since(args.since)  # a wrong span is one line before any broker is asked
        return report(_settings(args), since=args.since, as_json=args.json)
    if getattr(args, "gateway_cmd", None) == "client-token":
        import secrets

        from gateway.store import token_hash

        token = secrets.token_urlsafe(32)
        print(f"token (give it to the client's system, once; it is not kept): {token}")
        print(f'token_sha256 = "{token_hash(token)}"')
        return 0
    if getattr(args, "gateway_cmd", None) == "openapi":
        from gateway.openapi import document, markdown

        print(markdown() if args.markdown else orjson.dumps(document(), option=orjson.OPT_INDENT_2).decode())
        return 0
    if getattr(args, "gateway_cmd", None) == "hash-password":
        import getpass

        from gateway.console.auth import hash_password

        password = getpass.getpass("password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
        if len(password) < 12:
            return _err("hash-password: a desk password needs at least 12 characters")
        print(hash_password(password))
        return 0
    import signal

    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})  # taken by the stopper thread
    from gateway.run import run_gateway

    settings = _settings(args)
    refuse_development_key(settings, "gateway")
    if args.console_port is not None:
        if not 0 <= args.console_port <= 65535:
            msg = f"--http-port {args.console_port}: not a port (0..65535; 0: off)"
            raise FeblamError(msg)
        settings = replace(settings, gateway=replace(settings.gateway, http_port=args.console_port))
    return run_gateway(settings)


def cmd_vendor(args: argparse.Namespace) -> int:
    """``feblam vendor check --vendor FILE SAMPLES...``: each sample's canonical read, or why it is refused."""
    from feblam.errors import DecodeError
    from feblam.serde import read_to_dict
    from sources.mapping import compile_mapping, load_mapping
    from sources.vendors import VENDORS

    if args.vendor in VENDORS:
        vendor = VENDORS[args.vendor]
    else:
        vendor = compile_mapping(load_mapping(Path(args.vendor)))
    from feblam.errors import Skipped

    taken = refused = skipped = 0
    for sample in args.samples:
        path = Path(sample)
        try:
            lines = path.read_bytes().splitlines()
        except OSError as exc:
            return _err(f"{sample}: cannot read the samples ({exc.strerror})")
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                doc: dict[str, Any] = {"read": read_to_dict(vendor.decode(line))}
                taken += 1
            except Skipped as exc:  # an event the mapping does not take: not a read, not a dead letter
                doc = {"skipped": str(exc).removeprefix("skipped: ")}
                skipped += 1
            except DecodeError as exc:
                doc = {"refused": str(exc)}
                refused += 1
            print(orjson.dumps({"sample": f"{sample}:{n}", **doc}).decode())
    print(f"{vendor.name}: {taken} read, {skipped} skipped, {refused} refused", file=sys.stderr)
    return 1 if refused else 0


def cmd_explain(args: argparse.Namespace) -> int:
    """``feblam explain HIT_JSON|-``: why each hit matched (``--topic``: the hits on a topic, ``--hit``: one)."""
    from matchers.explain import explain_hit, explanation_text

    if args.topic is not None:
        from feblam.kafka import read_to_end

        settings = _settings(args)
        lines: Any = read_to_end(
            settings.kafka, [args.topic], since_ms=None, timeout=60.0, group="feblam-explain", what=args.topic
        )
        origin = args.topic
    elif args.hits is None:
        return _err("explain: give a file of hits (JSON, one a line), - for stdin, or --topic")
    elif args.hits == "-":
        lines, origin = (line.encode() for line in sys.stdin), "stdin"
    else:
        try:
            lines, origin = Path(args.hits).read_bytes().splitlines(), args.hits
        except OSError as exc:
            return _err(f"explain: {args.hits}: {exc.strerror}")
    shown = 0
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            hit = orjson.loads(line)
            if not isinstance(hit, dict) or not isinstance(hit.get("matches"), list):
                msg = "not a hit (no matches)"
                raise ValueError(msg)
            if args.hit is not None and hit.get("hit_id") != args.hit:
                continue
            doc = explain_hit(hit)
        except (ValueError, TypeError, AttributeError) as exc:
            return _err(f"explain: {origin}:{n}: {exc}")
        shown += 1
        print(orjson.dumps(doc).decode() if args.json else explanation_text(doc) + "\n")
    if shown == 0:
        return _err(f"explain: {origin}: no hit" + (f" with hit_id {args.hit!r}" if args.hit else ""))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """``feblam demo``: the job on embedded defaults."""
    from flows.demo import run_demo
    from gateway.demo import DemoGateway

    settings = _settings(args)
    return run_demo(
        settings,
        seconds=args.seconds,
        out_dir=Path(args.out_dir),
        rate=args.rate,
        hotlists=args.hotlists,
        gateway=DemoGateway,
    )


def cmd_bench(args: argparse.Namespace) -> int:
    """``feblam bench``: the benchmark suite (needs the bench extra)."""
    try:
        import psutil  # noqa: F401 - the bench extra
    except ImportError:
        return _err("feblam bench needs the bench extra (pip install 'feblam[bench]'): psutil is missing")
    from bench.suite import main as bench_main

    return bench_main(args)


def cmd_config_env(args: argparse.Namespace) -> int:
    """``feblam config-env``: every FEBLAM_* variable with its type, range and meaning."""
    from feblam.config import describe_type

    for var, (section, key, typ) in ENV_KEYS.items():
        name, allowed, desc = describe_type(typ)
        print(f"{var:<40} [{section}] {key} ({name}{'; ' + allowed if allowed else ''}): {desc}")
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    """``feblam config check|show|env|reference``."""
    from feblam.config import check_config, read_toml, reference_markdown

    if args.config_cmd == "env":
        return cmd_config_env(args)  # the one listing, also under its older name 'feblam config-env'
    if args.config_cmd == "reference":
        print(reference_markdown())
        return 0
    doc = read_toml(args.config) if args.config else {}
    settings, problems = check_config(doc, args.config or "defaults")
    for line in problems:
        print(f"feblam: error: {line}", file=sys.stderr)
    if settings is None:
        return EXIT_USAGE
    if args.config_cmd == "show":
        print(orjson.dumps(settings.redacted(), option=orjson.OPT_INDENT_2).decode())
    else:
        print(f"{args.config or 'defaults'}: ok")
    return 0


def cmd_retro(args: argparse.Namespace) -> int:
    """``feblam retro``: a retro-scan on demand (DESIGN section 10)."""
    from flows.retro import parse_duration, retro_command

    since = parse_duration(args.since)
    settings = _settings(args)
    refuse_development_key(settings, "retro")
    result = retro_command(settings, since, args.list or [], args.entry or [])
    print(
        f"reads_scanned={result.reads} retro_hits={len(result.hits)} seconds={result.seconds:.1f}"
        f"{'' if result.complete else ' incomplete=timeout'}"
    )
    return 0 if result.complete else 1


def cmd_topics(args: argparse.Namespace) -> int:
    """``feblam topics create``: every topic the configurations name, created where missing."""
    from feblam.topics import create_topics, topics_of

    if args.partitions < 1 or args.replication < 1:
        return _err(f"--partitions {args.partitions} / --replication {args.replication}: each needs to be 1 or more")
    configs = [load_settings(c) for c in args.config]
    logs.configure("warning", configs[0].logging.format)
    names: dict[str, Any] = {}
    for settings in configs:
        for t in topics_of(settings):
            names.setdefault(t.name, t)
    if not names:
        return _err(f"{', '.join(args.config)}: names no topic (no [[sources]] and no [[desks]])")
    done = create_topics(configs[0], list(names.values()), args.partitions, args.replication)
    for topic, what in done:
        print(f"{topic.name}: {what} - {topic.role}")
    created = sum(w.startswith("created") for _, w in done)
    print(f"{created} created, {len(done) - created} already there, on {configs[0].kafka.brokers}")
    return 0


def cmd_produce(args: argparse.Namespace) -> int:
    """``feblam produce``: reads from a file or stdin onto a vendor's topic."""
    from sources.produce import produce_lines, vendor_topic

    settings = _settings(args)
    if args.rate is not None and args.rate <= 0:
        return _err(f"--rate {args.rate:g}: reads a second must be above 0 (leave it out: as fast as possible)")
    topic = vendor_topic(settings, args.vendor, args.topic)
    if args.file == "-":
        done = produce_lines(settings, args.vendor, topic, sys.stdin.buffer, args.rate, "stdin")
    else:
        path = Path(args.file)
        try:
            fh = path.open("rb")
        except OSError as exc:
            return _err(f"{path}: cannot read it ({exc.strerror})")
        with fh:
            done = produce_lines(settings, args.vendor, topic, fh, args.rate, str(path))
    print(done.line())
    return 0


#: ``feblam change`` flags -> the change's columns (DESIGN 5).
CHANGE_FIELDS = ("plate", "country", "category", "priority", "action", "valid_from", "valid_until", "owner", "note")


def cmd_change(args: argparse.Namespace) -> int:
    """``feblam change``: one upsert or delete, checked as the job will take it, then published."""
    from sources.publish_change import publish_change

    settings = _settings(args)
    doc: dict[str, Any] = {"list_id": args.list_id, "op": args.op, "entry_id": args.entry, "seq": args.seq}
    given = {f: getattr(args, f) for f in CHANGE_FIELDS if getattr(args, f) is not None}
    if args.op == "delete" and given:
        return _err(f"delete: needs only --entry (drop {', '.join('--' + f.replace('_', '-') for f in given)})")
    topic, sent = publish_change(settings, doc | given)
    print(
        f"{args.list_id}/{args.entry.strip()}: {args.op} seq {sent['seq']} published to {topic}; "
        "live on every running job within a second"
    )
    return 0


def cmd_broker(args: argparse.Namespace) -> int:
    """``feblam broker``: the bundled broker alone, until SIGTERM/SIGINT."""
    import signal
    import threading

    from sources.broker import EmbeddedBroker, create_topics

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    from feblam.topics import topics_of

    topics = [t for t in args.topics.split(",") if t]
    for config in args.config or ():
        topics += [t.name for t in topics_of(load_settings(config))]
    with EmbeddedBroker(port=args.port) as broker:
        if topics:
            create_topics(broker.address, topics, partitions=args.partitions)
            print(f"topics: {', '.join(dict.fromkeys(topics))}", flush=True)
        print(f"broker {broker.address} (in memory; Ctrl-C stops it)", flush=True)
        while not stop.wait(0.5):
            if broker.proc is None or broker.proc.poll() is not None:
                return _err(f"broker on {broker.address} exited")
    return 0


# ---------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command (it imports no command's code: ``feblam --help`` stays quick)."""
    from bench.rows import ALL_ROWS as BENCH_ROWS

    p = argparse.ArgumentParser(prog="feblam", description="FEBLAM: the ANPR hit generator.")
    p.add_argument("--version", action=_Version)
    sub = p.add_subparsers(dest="cmd", required=True)

    n = sub.add_parser("normalize", help="plate key, fuzzy key and country of a plate")
    n.add_argument("plate", help="a plate as printed or read (any separators, Cyrillic/Greek look-alikes)")
    n.add_argument("--country", default=None, help="any country code form (B, BE, BEL, ...)")
    n.add_argument("--json", action="store_true", help="one JSON object instead of lines")
    n.set_defaults(func=cmd_normalize)

    r = sub.add_parser("replay", help="the dataflow over files; ends when input is exhausted")
    r.add_argument("--hotlists", required=True, help="hotlist directory (DESIGN section 5)")
    r.add_argument(
        "--input",
        action="append",
        required=True,
        metavar="VENDOR=PATH",
        help="canonical, vendor-a, vendor-b or vendor-c; repeatable, read in order",
    )
    r.add_argument("--out", required=True, help="hits JSONL file")
    r.add_argument("--dlq", default=None, help="dead-letter JSONL file (default: next to --out)")
    r.add_argument(
        "--dedup-window",
        type=float,
        default=None,
        metavar="SECONDS",
        help="duplicate suppression window (default: [dedup] window_seconds; 0: off)",
    )
    r.add_argument("--config", default=None, help="TOML settings (routing rules, privacy key)")
    r.add_argument("--quiet", action="store_true", help="only warnings and errors on stderr")
    r.set_defaults(func=cmd_replay)

    i = sub.add_parser("index", help="build, inspect and probe the hotlist index")
    isub = i.add_subparsers(dest="index_cmd", required=True)
    for name, helptext in (
        ("build", "build an index from snapshots"),
        ("stats", "size, shards, Bloom figures"),
        ("probe", "which entries a plate matches"),
    ):
        c = isub.add_parser(name, help=helptext)
        c.add_argument("--hotlists", default=None, help="hotlist directory (default: [hotlists] dir)")
        c.add_argument("--config", default=None, help="TOML settings ([hotlists] keys)")
        c.add_argument("--quiet", action="store_true", help="only warnings and errors on stderr")
        if name == "build":
            c.add_argument("--out", default=None, help="write the built index to this directory")
            c.add_argument(
                "--watch",
                action="store_true",
                help="run as the builder apart: rebuild on every change and publish into --out (see [hotlists] versions_dir)",
            )
            c.add_argument("--shards", type=int, default=None, help="exact-set shards (default: [hotlists] shards)")
            c.add_argument(
                "--bloom",
                choices=("rbloom", "pybloom"),
                default=None,
                help="Bloom filter library (default: [hotlists] bloom_backend)",
            )
        else:
            c.add_argument("--index", default=None, help="a directory written by 'index build --out'")
        if name == "probe":
            c.add_argument("plate", help="the plate to look up")
            c.add_argument("--country", default=None, help="the read's country (any code form); default unknown")
            c.add_argument("--at", default=None, help="capture time (ISO 8601); default now")
        c.set_defaults(func=cmd_index)
    c = isub.add_parser("allow-shrink", help="let the next full snapshot of a list shrink it past hotlists.max_shrink")
    c.add_argument("list_id", help="the list folder's name")
    c.add_argument("--hotlists", default=None, help="hotlist directory (default: [hotlists] dir)")
    c.add_argument("--config", default=None, help="TOML settings")
    c.add_argument("--quiet", action="store_true", help="only warnings and errors on stderr")
    c.set_defaults(func=cmd_index)

    run = sub.add_parser("run", help="the long-running job: Kafka in, hit sinks out")
    run.add_argument("--config", default=None, help="TOML settings (docs/configuration.md); default: built-in defaults")
    run.add_argument("-w", "--workers", type=int, default=1, help="worker threads per process")
    run.add_argument("-i", "--process-id", type=int, default=None, help="this process's index in --addresses")
    run.add_argument("-a", "--addresses", default=None, help="host:port;host:port of every process")
    run.add_argument(
        "--http-port", type=int, default=None, help="/metrics, /live, /ready (default: [http] port; 0: off)"
    )
    run.set_defaults(func=cmd_run)

    gw = sub.add_parser(
        "gateway", help="the Hit Gateway: desks' boards in the browser, acknowledge, escalate (DESIGN 12)"
    )
    gw.add_argument("--config", default=None, help="TOML settings with [gateway] and [[desks]]")
    gw.add_argument(
        "--http-port",
        dest="console_port",
        type=int,
        default=None,
        help="the console, /metrics, /live, /ready (default: [gateway] http_port; 0: off)",
    )
    gw.set_defaults(func=cmd_gateway)
    gsub = gw.add_subparsers(dest="gateway_cmd", required=False)
    ga = gsub.add_parser("audit", help="the access trail: who saw hit X, what user Y saw on day D (JSON lines)")
    ga.add_argument("--hit", default=None, help="only events that showed this hit id")
    ga.add_argument("--user", default=None, help="only this user's events")
    ga.add_argument("--day", default=None, metavar="YYYY-MM-DD", help="only events of this day (UTC)")
    ga.add_argument("--config", default=argparse.SUPPRESS, help="TOML settings with [gateway] access_topic")
    ga.set_defaults(func=cmd_gateway)
    gr = gsub.add_parser(
        "report", help="per desk and list: hits, cases, sightings per case, time to acknowledge, outcomes, flags"
    )
    gr.add_argument("--since", default="7d", help="the span to report (30m, 12h, 7d; default 7d)")
    gr.add_argument("--json", action="store_true", help="the rows as one JSON document")
    gr.add_argument("--config", default=argparse.SUPPRESS, help="TOML settings with [gateway] events_topic")
    gr.set_defaults(func=cmd_gateway)
    gsub.add_parser(
        "client-token",
        help="make a bearer token for a desk's system (API client) and print it with its token_sha256 line",
    ).set_defaults(func=cmd_gateway)
    go = gsub.add_parser("openapi", help="print the machine API's OpenAPI document (/api/v1/openapi.json)")
    go.add_argument("--markdown", action="store_true", help="as the Markdown reference of docs/api.md")
    go.set_defaults(func=cmd_gateway)
    gsub.add_parser(
        "hash-password",
        help="read a password (terminal or one stdin line), print its argon2id hash for [[desks]] users",
    ).set_defaults(func=cmd_gateway)

    vd = sub.add_parser("vendor", help="camera vendors defined by mapping files (DESIGN 3)")
    vsub = vd.add_subparsers(dest="vendor_cmd", required=True)
    vc = vsub.add_parser(
        "check", help="the canonical read of each sample payload, or why it is refused (exit 1 if any is)"
    )
    vc.add_argument("--vendor", required=True, help="a mapping file (NAME.toml) or a built-in vendor's name")
    vc.add_argument("samples", nargs="+", help="files of sample payloads, one a line")
    vc.set_defaults(func=cmd_vendor)

    ex = sub.add_parser("explain", help="why a hit matched: plates compared, OCR substitutions, country, validity")
    ex.add_argument("hits", nargs="?", default=None, metavar="HIT_JSON|-", help="hits, one JSON a line (-: stdin)")
    ex.add_argument("--topic", default=None, help="read the hits of this topic instead (needs --config)")
    ex.add_argument("--config", default=None, help="TOML settings with [kafka] (for --topic)")
    ex.add_argument("--hit", default=None, help="only the hit with this hit_id")
    ex.add_argument("--json", action="store_true", help="the explanation as JSON, one a line")
    ex.set_defaults(func=cmd_explain)

    d = sub.add_parser("demo", help="the job on an embedded broker with a camera simulator")
    d.add_argument("--seconds", type=float, default=None, help="stop after N seconds (default: Ctrl-C)")
    d.add_argument("--out-dir", default="demo-out/", help="where hits.jsonl and deadletter.jsonl go")
    d.add_argument("--rate", type=float, default=2000.0, help="simulated reads per second")
    d.add_argument("--hotlists", default=None, help="default: the shipped sample hotlists")
    d.add_argument("--http-port", type=int, default=None, help="/metrics, /live, /ready (default: [http] port; 0: off)")
    d.add_argument(
        "--config", default=None, help="TOML settings (routing, privacy key); broker and topics are the demo's"
    )
    d.set_defaults(func=cmd_demo)

    b = sub.add_parser("bench", help="the benchmark suite (reads/s, CPU, latency, index)")
    b.add_argument("--reads", type=int, default=200_000, help="generated reads per row")
    b.add_argument("--hotlist-size", type=int, default=1_000_000, help="entries of the generated hotlist")
    b.add_argument(
        "--only", default=None, metavar="NAME,...", help=f"comma-separated rows, of: {', '.join(BENCH_ROWS)}"
    )
    b.add_argument(
        "--json", action="store_true", help="one JSON object on stdout (DESIGN section 9) instead of a table"
    )
    b.add_argument("--rate", type=float, default=20_000.0, help="offered reads/s for the latency rows")
    b.add_argument("--hit-rate", type=float, default=0.005, help="share of generated reads that match an entry")
    b.add_argument("--plot", default=None, metavar="FILE.png", help="draw the figures (needs the plot extra)")
    b.add_argument("--seed", type=int, default=7, help="random seed of the generated data")
    b.add_argument(
        "--retro-reads",
        type=int,
        default=3_600_000,
        help="reads on the topics for the retro-scan row (an hour at 1,000/s)",
    )
    b.add_argument("--latency-seconds", type=float, default=8.0, help="how long to offer --rate for the latency row")
    b.set_defaults(func=cmd_bench)

    sub.add_parser(
        "config-env", help="list the FEBLAM_* environment overrides (the same as 'config env')"
    ).set_defaults(func=cmd_config_env)

    cf = sub.add_parser("config", help="check or show a configuration")
    csub = cf.add_subparsers(dest="config_cmd", required=True)
    for name, helptext in (
        ("check", "validate every key; exit 0, or non-zero naming each bad key"),
        ("show", "the effective configuration (file + FEBLAM_* variables), secrets masked"),
    ):
        c = csub.add_parser(name, help=helptext)
        c.add_argument("--config", default=None, help="TOML settings (default: the built-in defaults)")
        c.set_defaults(func=cmd_config)
    csub.add_parser("env", help="list the FEBLAM_* environment overrides").set_defaults(func=cmd_config)
    csub.add_parser("reference", help="docs/configuration.md, generated from the schema").set_defaults(func=cmd_config)

    rt = sub.add_parser("retro", help="look back over the vendor topics for entries (DESIGN section 10)")
    rt.add_argument("--config", required=True, help="TOML settings (topics, sinks, hotlists)")
    rt.add_argument(
        "--since", required=True, metavar="DURATION", help="how far back: a number with s, m, h or d (90m, 2h)"
    )
    rt.add_argument("--list", action="append", metavar="L", help="only this list's entries (repeatable)")
    rt.add_argument("--entry", action="append", metavar="E", help="only this entry id (repeatable)")
    rt.set_defaults(func=cmd_retro)

    tp = sub.add_parser("topics", help="create every topic the configurations name (idempotent)")
    tsub = tp.add_subparsers(dest="topics_cmd", required=True)
    tc = tsub.add_parser("create", help="create what is missing; what exists is left alone and said")
    tc.add_argument(
        "--config", action="append", required=True, help="a configuration (repeatable: the job's and the gateway's)"
    )
    tc.add_argument("--partitions", type=int, default=6, help="partitions of each created topic (default 6)")
    tc.add_argument("--replication", type=int, default=1, help="replication factor of each created topic")
    tc.set_defaults(func=cmd_topics)

    pr = sub.add_parser("produce", help="camera reads from a file or stdin onto a vendor's topic (one line a read)")
    pr.add_argument("--config", required=True, help="the job's configuration: its [[sources]] name the topic")
    pr.add_argument("--vendor", required=True, help="the payloads' vendor (a [[sources]] vendor of the configuration)")
    pr.add_argument("--topic", default=None, help="which topic, when several [[sources]] have that vendor")
    pr.add_argument("--rate", type=float, default=None, help="reads a second (default: as fast as possible)")
    pr.add_argument("file", help="a file of payloads, one a line; - for stdin")
    pr.set_defaults(func=cmd_produce, quiet=True)

    ch = sub.add_parser("change", help="publish one hotlist change (upsert or delete), checked as the job will")
    ch.add_argument("--config", required=True, help="the job's configuration: hotlists.dir and the change topics")
    ch.add_argument("--list", dest="list_id", required=True, help="the list (a folder of hotlists.dir)")
    ch.add_argument("op", choices=("upsert", "delete"), help="upsert (the entry's columns below) or delete")
    ch.add_argument("--entry", required=True, help="entry_id")
    for f in CHANGE_FIELDS:
        ch.add_argument(
            f"--{f.replace('_', '-')}",
            dest=f,
            type=int if f == "priority" else str,
            default=None,
            help=f"the entry's {f} (DESIGN 5; upsert only)",
        )
    ch.add_argument("--seq", type=int, default=None, help="sequence number (default: the next one of the list)")
    ch.set_defaults(func=cmd_change, quiet=True)

    bk = sub.add_parser("broker", help="start the bundled Kafka-compatible broker alone (for trying 'feblam run')")
    bk.add_argument("--port", type=int, default=9092, help="loopback port (default 9092, as in examples/feblam.toml)")
    bk.add_argument("--topics", default="", help="comma-separated topics to create")
    bk.add_argument(
        "--config",
        action="append",
        default=None,
        help="also create every topic this configuration reads or writes (repeatable: the job's and the gateway's)",
    )
    bk.add_argument("--partitions", type=int, default=2, help="partitions of each created topic")
    bk.set_defaults(func=cmd_broker)
    return p


class _Version(argparse.Action):
    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, help="FEBLAM's version with bytewax's and librdkafka's")

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        print(" ".join(f"{k} {v}" for k, v in versions().items()))
        parser.exit()


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; a FeblamError is one line on stderr and a non-zero status."""
    args = build_parser().parse_args(argv)
    os.umask(os.umask(0o027) | 0o027)  # files FEBLAM writes are never world-readable (nor group-writable)
    # Logs go to stderr from the first line on; stdout carries only results (JSON, tables, summaries).
    logs.configure("warning" if args.cmd in ("bench", "normalize") else "info")
    try:
        return int(args.func(args))
    except FeblamError as exc:
        _err(str(exc))
        return exc.exit_status
    except FileNotFoundError as exc:
        return _err(str(exc))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
