"""The benchmark suite (`feblam bench`): rows by family, the report.

The names below are the package's public API, imported lazily (importing the
package costs nothing; each name loads its module on first use).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_WHERE = {
    "main": "bench.suite",
    "ALL_ROWS": "bench.suite",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        msg = f"module {__name__!r} has no attribute {name!r}"
        raise AttributeError(msg)
    return getattr(import_module(_WHERE[name]), name)
