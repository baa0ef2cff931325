"""An index version on disk, memory-mapped by every process that uses it.

``save_index`` writes the arrays as ``.npy`` files, the strings as one Arrow
IPC file and the rbloom filters as saved bytes; ``open_index`` maps the arrays
(no copy: the pages are shared by every process on the machine through the
page cache) and loads the filters, one shard at a time (pybloom filters, which
cannot be saved, are rebuilt in small slices instead), so a flow running in the
same process is never held up for long. ``build_shared`` builds a version **in
a separate process** (the CPU-heavy part never competes with the flow for the
GIL) into a cache directory named by the snapshot contents, so processes on
one machine build each version once. When the snapshots only gained delta
files since a full version in the cache, the child writes a **layer** over that
version instead (the deltas' upserts and the base rows they drop), which a job
opens over the base it already maps.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.ipc as ipc

from feblam.errors import IndexFormatError
from matchers.bloom import BloomFilter, build_bloom, load_rbloom, new_rbloom
from matchers.columns import Plates, Times
from matchers.index import HotlistIndex, Index, ListInfo, PatternIndex
from matchers.layers import LayeredIndex

#: 2: rbloom filters saved with the version; 3: and the batch pre-check's word filter; 4: compact columns
#: (matchers.columns: narrow codes, coded times, compacted notes, plates as shapes)
FORMAT = 4
ARRAYS = ("list_idx", "key_code", "country", "priority", "category", "action", "owner")
#: Coded time columns (matchers.columns.Times): ``<name>.values.npy``, and ``<name>.codes.npy`` when coded.
TIMES = ("valid_from", "valid_until")
STRINGS = ("entry_id", "note")
#: The plates (matchers.columns.Plates): ``plate_codes.npy``, ``plate_literal_rows.npy``, ``plate_literals.arrow``
#: and the shapes in the metadata.
PLATE_ARRAYS = ("plate_codes", "plate_literal_rows")
DONE = "COMPLETE"
BLOOM_SLICE = 16_384


def save_index(index: HotlistIndex, directory: str | Path) -> Path:
    """Write ``index`` to ``directory`` (atomically: a temporary folder renamed at the end)."""
    tmp = _temporary_sibling(directory)
    for name in ARRAYS:
        np.save(tmp / f"{name}.npy", getattr(index, name))
    for name in TIMES:
        times: Times = getattr(index, name)
        np.save(tmp / f"{name}.values.npy", np.asarray(times.values))
        if times.codes is not None:
            np.save(tmp / f"{name}.codes.npy", np.asarray(times.codes))
    bounds = np.cumsum([0] + [a.shape[0] for a in index.shard_codes]).astype(np.int64)
    np.save(tmp / "shard_bounds.npy", bounds)
    np.save(tmp / "shard_codes.npy", np.concatenate(index.shard_codes) if index.shard_codes else np.zeros(0, np.int64))
    np.save(tmp / "shard_rows.npy", np.concatenate(index.shard_rows) if index.shard_rows else np.zeros(0, np.int32))
    np.save(tmp / "word_filter.npy", index.word_filter)
    if index.backend == "rbloom" and index.blooms:
        saved = [bf.save_bytes() for bf in index.blooms]  # type: ignore[attr-defined]
        np.save(tmp / "bloom_bounds.npy", np.cumsum([0] + [len(x) for x in saved]).astype(np.int64))
        (tmp / "blooms.bin").write_bytes(b"".join(saved))
    _write_arrow(tmp / "strings.arrow", pa.table({name: getattr(index, name) for name in STRINGS}))
    np.save(tmp / "plate_codes.npy", np.asarray(index.plate.codes))
    np.save(tmp / "plate_literal_rows.npy", np.asarray(index.plate.literal_rows))
    _write_arrow(tmp / "plate_literals.arrow", pa.table({"plate": index.plate.literal_plates}))
    meta = {
        "format": FORMAT,
        "version": index.version,
        "n_shards": index.n_shards,
        "backend": index.backend,
        "fp_rate": index.fp_rate,
        "build_seconds": index.build_seconds,
        "entries": len(index),
        "lists": _lists_doc(index.lists),
        "countries": index.countries,
        "categories": index.categories,
        "actions": index.actions,
        "owners": index.owners,
        "plate_shapes": index.plate.shapes,
        "long_keys": {str(k): v for k, v in index.long_keys.items()},
        "pattern_keys": {str(k): v for k, v in index.pattern_keys.items()},
    }
    return _complete(tmp, directory, meta)


def _write_arrow(path: Path, table: pa.Table) -> None:
    with pa.OSFile(str(path), "wb") as sink, ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)


def _one_chunk(col: pa.ChunkedArray) -> pa.Array:
    """One chunk (as save_index writes): kept, pointing into the mapping; combine_chunks would copy."""
    return col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()


def _temporary_sibling(directory: str | Path) -> Path:
    final = Path(directory)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


def _complete(tmp: Path, directory: str | Path, meta: dict[str, Any]) -> Path:
    """Write the metadata and the completion marker, then rename ``tmp`` to ``directory``."""
    final = Path(directory)
    (tmp / "meta.json").write_bytes(orjson.dumps(meta))
    (tmp / DONE).write_text(meta["version"])
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    return final


def _lists_doc(lists: tuple[ListInfo, ...]) -> list[list[Any]]:
    return [[i.list_id, i.name, i.fuzzy, i.entries, i.patterns, i.digest] for i in lists]


def read_meta(d: Path) -> dict[str, Any]:
    """The meta.json of a version folder; a missing or other-format folder is an IndexFormatError."""
    if not (d / DONE).exists():
        msg = f"{d}: not a complete index directory (no {DONE} marker)"
        raise IndexFormatError(msg)
    meta: dict[str, Any] = orjson.loads((d / "meta.json").read_bytes())
    if meta.get("format") != FORMAT:
        msg = f"{d}: index format {meta.get('format')!r}, expected {FORMAT}"
        raise IndexFormatError(msg)
    return meta


def open_index(
    directory: str | Path,
    *,
    pause: Callable[[], None] | None = None,
    with_blooms: bool = True,
) -> HotlistIndex:
    """Map an index written by :func:`save_index`; ``pause`` is called between pieces of work (filters, page faults).

    ``with_blooms=False`` maps the arrays only (for a builder that reads, never probes).
    """
    d = Path(directory)
    meta = read_meta(d)
    if meta.get("kind", "full") != "full":
        msg = f"{d}: a layer, not a full index (open it with open_version)"
        raise IndexFormatError(msg)
    columns: dict[str, Any] = {name: np.load(d / f"{name}.npy", mmap_mode="r") for name in ARRAYS}
    for name in TIMES:
        coded = d / f"{name}.codes.npy"
        time_codes = np.load(coded, mmap_mode="r") if coded.exists() else None
        columns[name] = Times(np.load(d / f"{name}.values.npy", mmap_mode="r"), time_codes, int(meta["entries"]))
    table = ipc.open_file(pa.memory_map(str(d / "strings.arrow"), "r")).read_all()
    for name in STRINGS:
        columns[name] = _one_chunk(table.column(name))
    literals = ipc.open_file(pa.memory_map(str(d / "plate_literals.arrow"), "r")).read_all().column("plate")
    plate_arrays = {name: np.load(d / f"{name}.npy", mmap_mode="r") for name in PLATE_ARRAYS}
    columns["plate"] = Plates(
        meta["plate_shapes"], plate_arrays["plate_codes"], plate_arrays["plate_literal_rows"], _one_chunk(literals)
    )
    columns["long_keys"] = {int(k): v for k, v in meta["long_keys"].items()}
    columns["pattern_keys"] = {int(k): v for k, v in meta["pattern_keys"].items()}
    for name in ("countries", "categories", "actions", "owners"):
        columns[name] = meta[name]
    bounds = np.load(d / "shard_bounds.npy")
    codes = np.load(d / "shard_codes.npy", mmap_mode="r")
    rows = np.load(d / "shard_rows.npy", mmap_mode="r")
    shard_codes = [codes[bounds[s] : bounds[s + 1]] for s in range(meta["n_shards"])]
    shard_rows = [rows[bounds[s] : bounds[s + 1]] for s in range(meta["n_shards"])]
    word_filter = np.load(d / "word_filter.npy", mmap_mode="r")
    blooms: list[BloomFilter] = []
    if with_blooms and (d / "blooms.bin").exists():
        # saved by the builder: loading a shard's filter is a copy of well under a millisecond
        saved = (d / "blooms.bin").read_bytes()
        at = np.load(d / "bloom_bounds.npy")
        for s in range(meta["n_shards"]):
            blooms.append(load_rbloom(saved[at[s] : at[s + 1]]))
            if pause is not None:
                pause()
    elif with_blooms:
        blooms = [_bloom_in_slices(sc, meta["fp_rate"], meta["backend"], pause) for sc in shard_codes]
    if pause is not None:  # a job: fault the pages in now, not in the first batches after the swap
        times = [a for n in TIMES for a in (columns[n].values, columns[n].codes) if a is not None]
        _prefault(
            [columns[n] for n in ARRAYS] + times + [codes, rows, word_filter], [columns[n] for n in STRINGS], pause
        )
    patterns = PatternIndex(sorted(columns["pattern_keys"].items()))
    index = HotlistIndex(
        version=meta["version"],
        lists=tuple(ListInfo(*row) for row in meta["lists"]),
        n_shards=meta["n_shards"],
        backend=meta["backend"],
        fp_rate=meta["fp_rate"],
        blooms=blooms,
        shard_codes=shard_codes,
        shard_rows=shard_rows,
        columns=columns,
        patterns=patterns,
        build_seconds=meta["build_seconds"],
        word_filter=word_filter,
    )
    index.source_dir = str(d.resolve())
    return index


def save_layer(layer: LayeredIndex, directory: str | Path, base_dir: str | Path) -> Path:
    """Write a layer over the full version in ``base_dir`` (a sibling folder of ``directory``)."""
    tmp = _temporary_sibling(directory)
    save_index(layer.overlay, tmp / "overlay")
    np.save(tmp / "removed.npy", np.array(sorted(layer.removed), dtype=np.int64))
    meta = {
        "format": FORMAT,
        "kind": "layer",
        "version": layer.version,
        "base": Path(base_dir).name,
        "base_version": layer.base.version,
        "build_seconds": layer.build_seconds,
        "lists": _lists_doc(layer.lists),
    }
    return _complete(tmp, directory, meta)


def open_version(directory: str | Path, *, live: Index | None = None, pause: Callable[[], None] | None = None) -> Index:
    """Open a full version or a layer; a layer reuses ``live``'s base when it is the same directory."""
    d = Path(directory)
    meta = read_meta(d)
    if meta.get("kind", "full") == "full":
        return open_index(d, pause=pause)
    base_dir = (d.parent / meta["base"]).resolve()
    live_files = live.files_version() if live is not None else None
    live_base = live_files.base if isinstance(live_files, LayeredIndex) else live_files
    if live_base is not None and live_base.source_dir == str(base_dir):
        base = live_base
    else:
        base = open_index(base_dir, pause=pause)
    if base.version != meta["base_version"]:
        msg = f"{d}: layer over version {meta['base_version']}, but {base_dir} holds {base.version}"
        raise IndexFormatError(msg)
    overlay = open_index(d / "overlay", pause=pause)
    layer = LayeredIndex(
        version=meta["version"],
        lists=tuple(ListInfo(*row) for row in meta["lists"]),
        base=base,
        removed=frozenset(np.load(d / "removed.npy").tolist()),
        overlay=overlay,
        build_seconds=meta["build_seconds"],
    )
    layer.source_dir = str(d.resolve())
    return layer


PAGE = 4096
PREFAULT_CHUNK = 16 << 20


def _prefault(arrays: list[np.ndarray], strings: list[pa.Array], pause: Callable[[], None]) -> None:
    """Read one byte of every page of the mapped files, 16 MB at a time with ``pause`` between.

    numpy releases the GIL for the strided reads, so the flow keeps running while
    the page tables fill.
    """
    views = [np.asarray(a).reshape(-1).view(np.uint8) for a in arrays if a.size]
    for arr in strings:
        views.extend(np.frombuffer(buf, dtype=np.uint8) for buf in arr.buffers() if buf is not None and buf.size)
    for v in views:
        for start in range(0, v.shape[0], PREFAULT_CHUNK):
            v[start : start + PREFAULT_CHUNK : PAGE].max()
            pause()


def _bloom_in_slices(codes: np.ndarray, fp_rate: float, backend: str, pause: Callable[[], None] | None) -> BloomFilter:
    if backend != "rbloom" or pause is None:
        return build_bloom(np.asarray(codes), fp_rate, backend)
    bf = new_rbloom(int(codes.shape[0]), fp_rate)
    for a in range(0, int(codes.shape[0]), BLOOM_SLICE):
        bf.update(codes[a : a + BLOOM_SLICE].tolist())
        pause()
    return bf


# ---------------------------------------------------------------- shared builds


def write_atomic(path: Path, data: bytes) -> None:
    """Write a file under a temporary name and rename it (readers never see half a file)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    tmp.rename(path)


#: The file in a versions folder that names the version published last (``feblam index build --watch``).
PUBLISHED = "CURRENT"


def publish(versions_dir: str | Path, version_dir: str | Path) -> None:
    """Name ``version_dir`` (a folder of ``versions_dir``) as the one jobs map, atomically."""
    folder = Path(version_dir)
    doc = {"dir": folder.name, "version": read_meta(folder).get("version"), "published_at": time.time()}
    write_atomic(Path(versions_dir) / PUBLISHED, orjson.dumps(doc))


def published(versions_dir: str | Path) -> Path:
    """The version folder published last in ``versions_dir``; an IndexFormatError when there is none yet."""
    root = Path(versions_dir)
    try:
        doc = orjson.loads((root / PUBLISHED).read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        msg = f"{root}: no published version ({PUBLISHED}): {exc}; start 'feblam index build --watch --out {root}'"
        raise IndexFormatError(msg) from None
    return root / str(doc["dir"])
