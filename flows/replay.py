"""``feblam replay``: the same dataflow over files, deterministic, ending when the input is exhausted."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bytewax.testing import run_main

from feblam.config import Settings, replace
from feblam.errors import FeblamError
from flows.pipeline import FlowStats, build_flow
from matchers.refresh import open_live_index
from sinks.files import JsonlSink
from sources.files import FilesSource


def run_replay(settings: Settings, inputs: Sequence[tuple[str, str]], out: Path, dlq: Path) -> tuple[FlowStats, str]:
    """Replay ``(vendor, path)`` inputs in order; hits to ``out``, dead letters to ``dlq``.

    Returns the counters and the index version. Output files are never overwritten:
    an existing non-empty ``out`` or ``dlq`` is an error (a replay appended to an
    earlier one would hold every hit twice).
    """
    for path, flag in ((out, "--out"), (dlq, "--dlq")):
        if path.exists() and path.stat().st_size:
            msg = f"{flag} {path}: exists and is not empty; a replay never overwrites or appends: choose a new file"
            raise FeblamError(msg)
    source = FilesSource(inputs)
    live = open_live_index(replace(settings.hotlists, shared_build=False), watch=False)
    stats = FlowStats()
    flow = build_flow(
        settings,
        source,
        JsonlSink(out),
        deadletter=JsonlSink(dlq),
        holder=live.holder,
        stats=stats,
        flow_id="feblam_replay",
    )
    run_main(flow)
    return stats, live.current.version
