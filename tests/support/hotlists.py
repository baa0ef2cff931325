"""Writing small hotlist directories and inputs in tests."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
BASE = {"category": "stolen_vehicle", "priority": 1, "action": "intercept"}


def sample_hotlists(tmp: Path) -> Path:
    """A copy of the sample hotlists in ``tmp/hot``, for tests that add or change files."""
    return Path(shutil.copytree(EXAMPLES / "hotlists", tmp / "hot"))


def entry(entry_id: str, plate: str, **kw: Any) -> dict[str, Any]:
    return {"entry_id": entry_id, "plate": plate, **BASE, **kw}


def write_snapshot(
    root: Path,
    list_id: str,
    rows: list[dict[str, Any]],
    *,
    seq: int = 1,
    kind: str = "full",
    fmt: str = "csv",
    toml: str | None = None,
) -> Path:
    d = root / list_id
    d.mkdir(parents=True, exist_ok=True)
    if toml is not None:
        (d / "list.toml").write_text(toml, encoding="utf-8")
    path = d / f"{seq:06d}-{kind}.{fmt}"
    cols: list[str] = []
    for r in rows:
        cols.extend(c for c in r if c not in cols)
    if fmt == "csv":
        with path.open("w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=cols, lineterminator="\n")
            w.writeheader()
            for r in rows:
                w.writerow({c: "" if r.get(c) is None else r.get(c) for c in cols})
    elif fmt == "jsonl":
        path.write_text("".join(json.dumps(r, default=str) + "\n" for r in rows), encoding="utf-8")
    elif fmt == "parquet":
        table = pa.table(
            {
                c: [None if r.get(c) is None else str(r.get(c)) if c != "priority" else r.get(c) for r in rows]
                for c in cols
            }
        )
        pq.write_table(table, path)
    else:
        raise ValueError(fmt)
    return path
