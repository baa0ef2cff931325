"""Generated data for the benchmark: a large hotlist snapshot and vendor payloads.

The snapshot generator is vectorised (numpy, pyarrow): 10 million realistic
plates of several countries in a few seconds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sources.simulator import FORMATS

_LETTERS = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", dtype=np.uint8)
_DIGITS = np.frombuffer(b"0123456789", dtype=np.uint8)


def plates(n: int, rng: np.random.Generator) -> tuple[pa.Array, pa.Array]:
    """``n`` plates as printed (Arrow strings) and their countries, in the mix of :data:`FORMATS`."""
    countries = list(FORMATS)
    weights = np.array([FORMATS[c][0] for c in countries])
    which = rng.choice(len(countries), size=n, p=weights / weights.sum())
    chunks_p: list[pa.Array] = []
    chunks_c: list[pa.Array] = []
    for ci, country in enumerate(countries):
        idx_n = int((which == ci).sum())
        templates = FORMATS[country][1]
        per = np.array_split(np.arange(idx_n), len(templates))
        for template, part in zip(templates, per, strict=True):
            m = len(part)
            if not m:
                continue
            width = len(template)
            mat = np.empty((m, width), dtype=np.uint8)
            for j, ch in enumerate(template):
                if ch == "L":
                    mat[:, j] = _LETTERS[rng.integers(0, 26, size=m)]
                elif ch == "D":
                    mat[:, j] = _DIGITS[rng.integers(0, 10, size=m)]
                else:
                    mat[:, j] = ord(ch)
            strings = pa.array(mat.reshape(-1).view(f"S{width}"), type=pa.binary(width))
            chunks_p.append(pc.cast(pc.cast(strings, pa.binary()), pa.string()))
            chunks_c.append(pa.array(np.full(m, country)))
    order = rng.permutation(n)
    p = pa.concat_arrays(chunks_p).take(pa.array(order))
    c = pa.concat_arrays([pc.cast(x, pa.string()) for x in chunks_c]).take(pa.array(order))
    return p, c


def snapshot_table(n: int, seed: int = 11) -> pa.Table:
    """A national-size hotlist: plates, countries, categories, priorities, some validity windows."""
    rng = np.random.default_rng(seed)
    p, c = plates(n, rng)
    ids = pc.binary_join_element_wise("N", pc.utf8_lpad(pc.cast(pa.array(np.arange(n)), pa.string()), 9, "0"), "")
    cats = np.array(["uninsured", "no_inspection", "lez", "sis_alert", "stolen_vehicle", "wanted"])
    prio = np.array([4, 4, 5, 1, 1, 2], dtype=np.int8)
    acts = np.array(["inform", "inform", "inform", "intercept", "intercept", "intercept"])
    k = rng.choice(len(cats), size=n, p=[0.45, 0.3, 0.15, 0.05, 0.03, 0.02])
    country = pc.if_else(pa.array(rng.random(n) < 0.1), pa.scalar(None, pa.string()), c)
    return pa.table(
        {
            "entry_id": ids,
            "plate": p,
            "country": country,
            "category": pa.array(cats[k]),
            "priority": pa.array(prio[k]),
            "action": pa.array(acts[k]),
        }
    )


def write_snapshot(directory: Path, n: int, list_id: str = "NATIONAL", seq: int = 1, seed: int = 11) -> Path:
    """Write ``<directory>/<list_id>/<seq>-full.parquet`` with ``n`` entries (cached by size and seed)."""
    d = directory / list_id
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{seq:06d}-full.parquet"
    marker = d / f".{seq:06d}-{n}-{seed}.done"
    if path.exists() and marker.exists():
        return path
    pq.write_table(snapshot_table(n, seed), path, row_group_size=1 << 20)
    marker.touch()
    return path


def sample_hot_plates(table: pa.Table, k: int, seed: int = 3) -> list[tuple[str, str | None]]:
    """``k`` (plate, country) pairs of a snapshot table, for generating hitting reads."""
    rng = np.random.default_rng(seed)
    rows = rng.choice(table.num_rows, size=min(k, table.num_rows), replace=False)
    sub = table.take(pa.array(rows))
    return list(zip(sub.column("plate").to_pylist(), sub.column("country").to_pylist(), strict=True))
