"""The benchmark suite (`feblam bench`): rows by family, the report."""

from __future__ import annotations

from feblam.lazy import lazy_api

__all__, __getattr__ = lazy_api(
    __name__,
    {
        "main": "bench.suite",
        "ALL_ROWS": "bench.rows",
    },
)
