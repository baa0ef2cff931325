"""The dataflow and the commands that run it: run, demo, replay; and what operators see of it.

The names below are the package's public API, imported lazily (importing the
package costs nothing; each name loads its module on first use).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_WHERE = {
    "build_flow": "flows.pipeline",
    "FlowStats": "flows.pipeline",
    "hit_id": "flows.pipeline",
    "run_job": "flows.run",
    "run_demo": "flows.demo",
    "run_replay": "flows.replay",
    "Operations": "flows.operations",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        msg = f"module {__name__!r} has no attribute {name!r}"
        raise AttributeError(msg)
    return getattr(import_module(_WHERE[name]), name)
