"""The dataflow and the commands that run it: run, demo, replay; and what operators see of it."""

from __future__ import annotations

from feblam.lazy import lazy_api

__all__, __getattr__ = lazy_api(
    __name__,
    {
        "build_flow": "flows.pipeline",
        "FlowStats": "flows.pipeline",
        "hit_id": "flows.pipeline",
        "run_job": "flows.run",
        "run_demo": "flows.demo",
        "run_replay": "flows.replay",
        "Operations": "flows.operations",
    },
)
