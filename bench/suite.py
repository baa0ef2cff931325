"""``feblam bench``: run the rows side by side on the same data and report (DESIGN section 9)."""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from bench.rows import ALL_ROWS, GATEWAY_ROWS, INDEX_ROWS, KAFKA_ROWS, MEMORY_ROWS
from feblam.errors import FeblamError

ROUNDS = 3


def machine() -> dict[str, Any]:
    import bytewax  # noqa: F401
    import psutil

    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    from importlib.metadata import version

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "bytewax": version("bytewax"),
        "confluent_kafka": version("confluent-kafka"),
        "pyarrow": version("pyarrow"),
    }


def cache_dir() -> Path:
    root = Path(os.environ.get("FEBLAM_BENCH_CACHE") or Path.cwd() / "build" / "bench-cache")  # empty: the default
    root.mkdir(parents=True, exist_ok=True)
    return root


def ratios(results: list[dict[str, Any]]) -> dict[str, float]:
    by = {r["name"]: r for r in results}
    out: dict[str, float] = {}

    def ratio(a: str, b: str, key: str = "reads_per_s") -> None:
        if a in by and b in by and by[a].get(key) and by[b].get(key):
            suffix = "" if key == "reads_per_s" else f" ({key})"
            out[f"{a}/{b}{suffix}"] = round(by[a][key] / by[b][key], 3)

    ratio("feblam-memory", "limit-memory")
    ratio("ceiling-memory", "limit-memory")
    ratio("feblam-memory", "ceiling-memory")
    ratio("feblam-memory", "naive-memory")
    ratio("feblam-memory-dedup", "limit-memory")
    ratio("feblam-memory-clones", "feblam-memory")
    ratio("feblam-kafka", "ceiling-kafka")
    ratio("feblam-kafka", "ceiling-kafka", "reads_per_cpu_s")  # the broker bounds the wall clock of both
    ratio("feblam-kafka", "naive-kafka")
    ratio("feblam-memory-2proc", "feblam-memory")
    ratio("retro-scan", "feblam-kafka")
    from bench.mapping_rows import MAPPED

    for vendor in MAPPED:
        ratio(f"mapped-{vendor}", f"hand-{vendor}")
    return out


class Progress:
    def __init__(self, total: int, enabled: bool) -> None:
        self.bar = None
        if enabled:
            from rich.console import Console
            from rich.progress import Progress as RichProgress

            self.bar = RichProgress(transient=True, console=Console(stderr=True))
            self.task = self.bar.add_task("bench", total=total)
            self.bar.start()

    def step(self, name: str) -> None:
        if self.bar is not None:
            self.bar.update(self.task, description=f"bench: {name}")

    def advance(self) -> None:
        if self.bar is not None:
            self.bar.advance(self.task)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def run(args: argparse.Namespace) -> dict[str, Any]:
    from bench import data as data_mod
    from bench import index_rows, kafka_rows
    from bench import memory as memory_rows

    only = [x.strip() for x in args.only.split(",")] if args.only else list(ALL_ROWS)
    unknown = set(only) - set(ALL_ROWS)
    if unknown:
        msg = f"unknown row(s) {', '.join(sorted(unknown))} (known: {', '.join(ALL_ROWS)})"
        text = f"feblam: error: {msg}"
        raise SystemExit(text)
    cache = cache_dir()
    memory = [r for r in MEMORY_ROWS if r in only]
    steps = len(memory) * ROUNDS + sum(1 for r in only if r not in MEMORY_ROWS) + 1
    progress = Progress(steps, sys.stderr.isatty() and not args.json)
    started = time.perf_counter()
    results: list[dict[str, Any]] = []
    if "gateway" in only:  # first, on a broker of its own; it needs no generated reads
        progress.step("gateway")
        from bench.gateway_rows import gateway

        results.append(gateway(cache))
        progress.advance()
    for name in ("gateway-api", "gateway-webhook"):  # each on a broker and gateway of its own
        if name in only:
            progress.step(name)
            from bench import gateway_rows

            results.append(getattr(gateway_rows, name.replace("-", "_"))(cache))
            progress.advance()
    if "ocr-quality" in only:  # no broker, no generated reads: a set of plates of its own
        progress.step("ocr-quality")
        from bench.ocr_quality import ocr_quality

        results.append(ocr_quality(seed=args.seed))
        progress.advance()
    if not set(only) - set(GATEWAY_ROWS) - {"ocr-quality"}:
        progress.close()
        return {
            "machine": machine(),
            "command": _command(),
            "params": {"reads": 0, "hotlist_size": 0, "seed": args.seed},
            "results": results,
            "ratios": ratios(results),
            "total_seconds": round(time.perf_counter() - started, 1),
        }
    progress.step("generating data and building the index")
    wants_naive = bool({"naive-memory", "naive-kafka"} & set(only))
    wants_limit = "limit-memory" in only
    data = data_mod.prepare(
        cache, args.reads, args.hotlist_size, args.hit_rate, args.seed, naive=wants_naive or wants_limit
    )
    progress.advance()
    naive = memory_rows.NaiveIndex(data.keys) if wants_naive else None
    from bench.limit import LimitIndex, limit_memory

    limit = LimitIndex(data.keys) if wants_limit else None
    data.keys = []

    runners: dict[str, Callable[[], dict[str, Any]]] = {
        "limit-memory": lambda: limit_memory(limit, data.payloads, data.reads),  # type: ignore[arg-type]
        "ceiling-memory": lambda: memory_rows.ceiling_memory(data),
        "feblam-memory": lambda: memory_rows.feblam_memory(data),
        "feblam-memory-dedup": lambda: memory_rows.feblam_memory(data, dedup=True),
        "feblam-memory-clones": lambda: memory_rows.feblam_memory(data, clones=memory_rows.camera_register(cache)),
        "naive-memory": lambda: memory_rows.naive_memory(data, naive),  # type: ignore[arg-type]
    }
    # Alternate the in-memory rows so that a noisy moment hurts them alike; keep each row's best round.
    runs: dict[str, list[dict[str, Any]]] = {r: [] for r in memory}
    for rnd in range(ROUNDS):
        for name in memory:
            if name == "naive-memory" and runs[name] and runs[name][0]["seconds"] > 3:
                progress.advance()
                continue  # the naive flow is slow; one round is enough to know it
            progress.step(f"{name} round {rnd + 1}")
            runs[name].append(runners[name]())
            progress.advance()
    for name in memory:
        best = max(runs[name], key=lambda r: r["reads_per_s"] or 0)
        best = {**best, "rounds": len(runs[name]), "reads_per_s_all": [r["reads_per_s"] for r in runs[name]]}
        results.append(best)

    if "mappings" in only:
        progress.step("mappings")
        from bench.mapping_rows import mapping_rows

        results += mapping_rows(data)
        progress.advance()
    if "feblam-memory-2proc" in only:
        progress.step("feblam-memory-2proc")
        from bench.cluster import two_process_row

        results.append(two_process_row(args, cache))
        progress.advance()

    if "feblam-kafka-latency" in only:  # first, on a broker of its own, before anything else loads the machine
        progress.step("feblam-kafka-latency")
        results.append(kafka_rows.feblam_kafka_latency(data, args.rate, args.latency_seconds, cache))
        progress.advance()
    for row, retro in (("change-to-hit", True), ("change-to-hit-retro-off", False)):
        if row in only:  # on a broker of its own, like the latency row
            progress.step(row)
            results.append(kafka_rows.change_to_hit(data, cache, retro=retro))
            progress.advance()
    if "retro-scan" in only:  # on a broker of its own: an hour of reads at 1,000 reads/s
        progress.step("retro-scan")
        results.append(kafka_rows.retro_scan(data, cache, reads=args.retro_reads))
        progress.advance()
    if "retro-stall" in only:  # the flow beside a scan in the same process, as in the job
        progress.step("retro-stall")
        results.append(kafka_rows.retro_stall(data))
        progress.advance()
    kafka = [
        r
        for r in KAFKA_ROWS
        if r in only
        and r not in ("feblam-kafka-latency", "change-to-hit", "change-to-hit-retro-off", "retro-scan", "retro-stall")
    ]
    if kafka:
        kb = kafka_rows.KafkaBench(data)
        try:
            for name in kafka:
                progress.step(name)
                if name == "feblam-kafka":
                    results.append(kafka_rows.feblam_kafka(kb))
                elif name == "ceiling-kafka":
                    results.append(kafka_rows.ceiling_kafka(kb))
                elif name == "naive-kafka":
                    results.append(kafka_rows.naive_kafka(kb, naive))  # type: ignore[arg-type]
                progress.advance()
        finally:
            kb.close()
    for name in INDEX_ROWS:
        if name in only:
            progress.step(name)
            if name == "index-build":
                results.append(index_rows.index_build(data))
            elif name == "index-swap":
                results.append(index_rows.index_swap(data, cache))
            elif name == "index-publish":
                results.append(index_rows.index_publish(data, cache))
            else:
                results.append(index_rows.index_delta(data, cache))
            progress.advance()
    progress.close()
    by_name = {r["name"]: r for r in results}
    if "feblam-kafka" in by_name and "feblam-kafka-latency" in by_name:
        # DESIGN section 9 gives every row p50/p99: the FEBLAM Kafka row carries the latency
        # measured at the offered --rate (throughput itself is measured at saturation).
        lat = by_name["feblam-kafka-latency"]
        by_name["feblam-kafka"].update(p50_ms=lat["p50_ms"], p99_ms=lat["p99_ms"], latency_offered_rate=args.rate)
    return {
        "machine": machine(),
        "command": _command(),
        "params": {
            "reads": data.reads,
            "hotlist_size": args.hotlist_size,
            "hit_rate": args.hit_rate,
            "rate": args.rate,
            "seed": args.seed,
            "batch": data_mod.BATCH,
            "expected_hot_reads": data.expected_hot,
        },
        "results": results,
        "ratios": ratios(results),
        "total_seconds": round(time.perf_counter() - started, 1),
    }


def _title(p: dict[str, Any]) -> str:
    return f"feblam bench — {p['reads']:,} reads, hotlist {p['hotlist_size']:,}" if p["reads"] else "feblam bench"


def _command() -> str:
    return "feblam bench " + " ".join(sys.argv[2:]) if len(sys.argv) > 1 else "feblam bench"


COLUMNS = ["name", "reads", "seconds", "reads_per_s", "cpu_seconds", "reads_per_cpu_s", "p50_ms", "p99_ms"]
HIDDEN = {"reads_per_s_all", "percentiles_ms"}


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 100 else f"{value:,.3g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _extra(r: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in r.items() if k not in COLUMNS and k not in HIDDEN and v is not None)


def markdown(report: dict[str, Any]) -> str:
    """The report as a Markdown table: readable piped, in a narrow terminal, in RESULTS.md."""
    p = report["params"]
    lines = [_title(p), "", "| " + " | ".join(COLUMNS) + " | extra |", "|" + "---|" * (len(COLUMNS) + 1)]
    for r in report["results"]:
        lines.append("| " + " | ".join(_cell(r.get(c)) for c in COLUMNS) + f" | {_extra(r)} |")
    lines.append("")
    lines += [f"- {k} = {v}" for k, v in report["ratios"].items()]
    lines.append(
        f"- machine: {report['machine']['cpu']} ({report['machine']['cores']} cores); total {report['total_seconds']} s"
    )
    return "\n".join(lines)


def table(report: dict[str, Any]) -> None:
    """A rich table on a terminal wide enough for it; Markdown otherwise (never cut cells)."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal or console.width < 120:
        print(markdown(report))
        return
    t = Table(title=_title(report["params"]))
    for c in COLUMNS:
        t.add_column(c, justify="left" if c == "name" else "right", no_wrap=True)
    t.add_column("extra", overflow="fold")
    for r in report["results"]:
        t.add_row(*[_cell(r.get(c)) for c in COLUMNS], _extra(r))
    console.print(t)
    for k, v in report["ratios"].items():
        console.print(f"  {k} = {v}")
    console.print(
        f"  machine: {report['machine']['cpu']} ({report['machine']['cores']} cores); total {report['total_seconds']} s"
    )


def plot(report: dict[str, Any], path: str) -> None:
    """What a reader compares: each row's reads/s as a share of limit-memory, and the latency distribution."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        text = "feblam: error: --plot needs matplotlib (pip install -e '.[plot]')"
        raise SystemExit(text) from exc
    by = {r["name"]: r for r in report["results"]}
    base = by.get("limit-memory") or by.get("ceiling-memory")
    rs = [r for r in report["results"] if r.get("reads_per_s") and "latency" not in r["name"] and base]
    lat = by.get("feblam-kafka-latency")
    fig, axes = plt.subplots(1, 2 if lat and lat.get("percentiles_ms") else 1, figsize=(13, 4.8), squeeze=False)
    ax = axes[0][0]
    if rs and base:
        shares = [r["reads_per_s"] / base["reads_per_s"] for r in rs]
        bars = ax.barh(
            [r["name"] for r in rs], shares, color=["#3b6ea5" if "feblam" in r["name"] else "#999999" for r in rs]
        )
        for bar, r, share in zip(bars, rs, shares, strict=True):
            ax.text(
                bar.get_width(),
                bar.get_y() + bar.get_height() / 2,
                f" {share:.2f}  ({r['reads_per_s']:,.0f}/s)",
                va="center",
                fontsize=8,
            )
        ax.axvline(1.0, color="black", linewidth=0.8)
        ax.set_xlim(0, max(shares) * 1.35)
        ax.set_xlabel(f"reads/s as a share of {base['name']} ({base['reads_per_s']:,.0f}/s)")
        ax.set_title("throughput against the bare-Python limit")
        ax.invert_yaxis()
    if lat and lat.get("percentiles_ms"):
        ax2 = axes[0][1]
        pct = lat["percentiles_ms"]
        ax2.plot(pct, [q / 100 for q in range(len(pct))], color="#3b6ea5")
        for q, label in ((50, "p50"), (99, "p99")):
            value = pct[q]
            ax2.axvline(value, color="#a56a3b", linestyle="--", linewidth=0.8)
            ax2.annotate(
                f"{label} {value:.1f} ms",
                (value, q / 100),
                xytext=(6, -12 if q == 99 else 6),
                textcoords="offset points",
                fontsize=8,
            )
        ax2.set_xscale("log")
        ax2.set_xlabel("ms, publish to hit (log scale)")
        ax2.set_ylabel("share of hits")
        ax2.set_title(f"latency CDF at {lat.get('offered_rate', report['params']['rate']):,.0f} reads/s offered")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def check_plot(path: str) -> None:
    """Before a run of minutes: matplotlib is there and the plot's folder takes a file (one line otherwise)."""
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        text = f"--plot {path}: needs matplotlib (pip install -e '.[plot]'); nothing was run"
        raise FeblamError(text)
    folder = Path(path).resolve().parent
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        text = f"--plot {path}: cannot write into {folder}; nothing was run"
        raise FeblamError(text)


def main(args: argparse.Namespace) -> int:
    from feblam.children import exit_on_termination

    exit_on_termination()  # a SIGTERM stops the bench's broker and children like Ctrl-C does
    if args.plot:
        check_plot(args.plot)
    report = run(args)
    if args.json:
        sys.stdout.write(orjson.dumps(report).decode() + "\n")
    else:
        table(report)
    if args.plot:
        plot(report, args.plot)
    return 0
