"""The two-process row: the feblam-memory flow as a Bytewax cluster of two processes on loopback.

The parent writes the generated payloads once; each child maps the shared
index version (built once per machine), takes its share of the in-memory
partitions and reports when it started and ended the flow.
"""

from __future__ import annotations

import argparse
import pickle
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson

PARTS = 8


def two_process_row(args: argparse.Namespace, cache: Path) -> dict[str, Any]:
    from bench import data as data_mod
    from bench import index_rows
    from feblam.children import die_with_parent
    from sources.broker import free_port

    data = data_mod.prepare(cache, args.reads, args.hotlist_size, args.hit_rate, args.seed)
    payload_file = cache / "cluster-payloads.pkl"
    payload_file.write_bytes(pickle.dumps(data.payloads))
    addresses = f"127.0.0.1:{free_port()};127.0.0.1:{free_port()}"
    outs = [cache / f"cluster-{i}.json" for i in range(2)]
    for o in outs:
        o.unlink(missing_ok=True)
    procs = [
        subprocess.Popen(  # noqa: S603 - our own module
            [
                sys.executable,
                "-m",
                "bench.cluster",
                str(i),
                addresses,
                str(payload_file),
                str(data.hot_dir),
                str(index_rows.index_cache()),
                str(outs[i]),
            ],
            stdout=subprocess.DEVNULL,
            stderr=(cache / f"cluster-{i}.log").open("wb"),
            preexec_fn=die_with_parent,
        )
        for i in range(2)
    ]
    codes = [p.wait(timeout=600) for p in procs]
    if codes != [0, 0]:
        msg = f"cluster children exited with {codes}; see {cache}/cluster-*.log"
        raise RuntimeError(msg)
    reports = [orjson.loads(o.read_bytes()) for o in outs]
    start = min(r["start"] for r in reports)
    end = max(r["end"] for r in reports)
    reads = sum(r["reads"] for r in reports)
    wall = end - start
    return {
        "name": "feblam-memory-2proc",
        "reads": reads,
        "seconds": round(wall, 4),
        "reads_per_s": round(reads / wall, 1),
        "cpu_seconds": round(sum(r["cpu"] for r in reports), 4),
        "reads_per_cpu_s": round(reads / sum(r["cpu"] for r in reports), 1),
        "p50_ms": None,
        "p99_ms": None,
        "processes": 2,
        "reads_per_process": [r["reads"] for r in reports],
        "hits": sum(r["hits"] for r in reports),
        "startup_seconds": [round(r["startup"], 2) for r in reports],
    }


def _child(argv: list[str]) -> int:
    from bytewax.run import cli_main
    from bytewax.testing import TestingSink

    from bench.data import MemorySource
    from bench.gaps import GapLog
    from feblam.config import HotlistSettings, Settings
    from flows.pipeline import FlowStats, build_flow
    from matchers.refresh import open_live_index

    proc_id, addresses, payload_file, hot_dir, index_cache, out = argv
    payloads = pickle.loads(Path(payload_file).read_bytes())  # noqa: S301 - written by our parent a moment ago
    holder = open_live_index(HotlistSettings(dir=hot_dir, cache_dir=index_cache), watch=False).holder
    source = MemorySource(payloads)
    items = source.items

    class Parted(MemorySource):
        def list_parts(self) -> list[str]:
            return [f"m{k}" for k in range(PARTS)]

        def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> Any:
            from bench.data import _MemoryPartition

            k = int(for_part[1:])
            return _MemoryPartition(items[k::PARTS], None, gaps)

    parted = Parted.__new__(Parted)
    parted.items, parted.repeat_until = items, None
    stats = FlowStats()
    gaps = GapLog()
    hits: list[Any] = []
    settings = Settings().without_dedup()
    flow = build_flow(
        settings,
        parted,
        TestingSink(hits),
        deadletter=TestingSink([]),
        holder=holder,
        stats=stats,
        flow_id="bench_cluster",
    )
    c0, start = time.process_time(), time.time()
    cli_main(flow, workers_per_process=1, process_id=int(proc_id), addresses=addresses.split(";"))
    end, cpu = time.time(), time.process_time() - c0
    # Time from this process's first batch to its last: cluster start-up (connecting the
    # processes) is not reads/s; the row spans the earliest first batch to the latest last one.
    Path(out).write_bytes(
        orjson.dumps(
            {
                "start": gaps.first_wall,
                "end": gaps.last_wall,
                "startup": gaps.first_wall - start,
                "wall_all": end - start,
                "reads": stats.reads,
                "cpu": cpu,
                "hits": len(hits),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
