"""Building an index version: from snapshot tables to the arrays of :mod:`matchers.index`.

``build_index`` files every entry of every list (vectorised; no Python object
per entry); ``build_layer`` builds the small overlay of a :class:`LayeredIndex`.
``load_index`` and ``load_layer`` read and validate the snapshots first.
No Kafka and no Bytewax here.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from feblam.config import HotlistSettings
from feblam.errors import SnapshotError
from feblam.logs import get_logger
from matchers.bloom import BloomFilter, build_bloom
from matchers.columns import Plates, Times, compact_text, narrow
from matchers.hotdir import list_digest, list_files
from matchers.index import (
    DEFAULT_FP_RATE,
    DEFAULT_SHARDS,
    TS_MAX,
    TS_MIN,
    FilesVersion,
    HotlistIndex,
    Index,
    ListInfo,
    PatternIndex,
)
from matchers.keycode import PACKED_MAX_LEN, key_and_fuzzy_codes
from matchers.layers import ChangedIndex, LayeredIndex
from matchers.listspec import read_list_spec
from matchers.snapshot import SCHEMA, ListSnapshot, load_deltas, load_hotlists
from matchers.wordfilter import build_word_filter

log = get_logger(__name__)


Progress = Callable[[str, float], None]


def version_of(lists: Iterable[ListInfo]) -> str:
    """The version id: a hash of every list's id and content digest, however the version was built."""
    h = hashlib.blake2b(digest_size=8)
    for info in lists:
        h.update(f"{info.list_id}\x1f{info.digest}\x1e".encode())
    return h.hexdigest()


def _dict_column(col: pa.Array) -> tuple[npt.NDArray[Any], list[Any]]:
    enc = pc.dictionary_encode(col).combine_chunks() if isinstance(col, pa.ChunkedArray) else pc.dictionary_encode(col)
    idx = enc.indices.to_numpy(zero_copy_only=False)
    return idx, enc.dictionary.to_pylist()


def build_index(
    lists: Sequence[ListSnapshot],
    *,
    n_shards: int = DEFAULT_SHARDS,
    fp_rate: float = DEFAULT_FP_RATE,
    backend: str = "rbloom",
    progress: Progress | None = None,
    with_blooms: bool = True,
) -> HotlistIndex:
    """Build one index version from loaded lists (vectorised; a few Python loops per shard).

    ``with_blooms=False`` is for a builder that saves a version without filters
    (pybloom ones cannot be saved): the processes that map it build their own
    (:mod:`matchers.store`).
    """
    started = time.perf_counter()

    def step(name: str, frac: float) -> None:
        if progress is not None:
            progress(name, frac)

    step("concat", 0.0)
    tables = []
    infos = []
    for i, snap in enumerate(lists):
        t = snap.table
        tables.append(t.append_column("list_idx", pa.array(np.full(t.num_rows, i, dtype=np.int16))))
        k = t.column("key")
        n_pat = (
            int(pc.sum(pc.or_(pc.match_substring(k, "?"), pc.match_substring(k, "*"))).as_py() or 0)
            if t.num_rows
            else 0
        )
        infos.append(ListInfo(snap.list_id, snap.name, snap.fuzzy, t.num_rows, n_pat, snap.digest))
    if tables:
        table = pa.concat_tables(tables).combine_chunks()
    else:
        from matchers.snapshot import SCHEMA

        table = SCHEMA.empty_table().append_column("list_idx", pa.array([], pa.int16()))
    n = table.num_rows
    keys = table.column("key").combine_chunks()
    is_pat = pc.fill_null(pc.or_(pc.match_substring(keys, "?"), pc.match_substring(keys, "*")), False)
    is_pat = is_pat.to_numpy(zero_copy_only=False)
    plain_keys = pc.if_else(pa.array(is_pat), "", keys) if is_pat.any() else keys

    step("key codes", 0.1)
    key_codes, fcodes = key_and_fuzzy_codes(plain_keys)
    key_codes[is_pat] = -1
    lengths = pc.utf8_length(keys).to_numpy(zero_copy_only=False)
    long_rows = np.nonzero((lengths > PACKED_MAX_LEN) & ~is_pat)[0]
    long_keys = {int(r): keys[int(r)].as_py() for r in long_rows}
    pat_rows = np.nonzero(is_pat)[0]
    pattern_keys = {int(r): keys[int(r)].as_py() for r in pat_rows}

    step("columns", 0.3)
    countries: list[str | None] = [None]
    cc_idx, cc_values = _dict_column(pc.fill_null(table.column("country").combine_chunks(), ""))
    cc_map = np.array([0] + [0] * len(cc_values), dtype=np.int16)
    for i, v in enumerate(cc_values):
        if v:
            countries.append(v)
            cc_map[i] = len(countries) - 1
    country = cc_map[cc_idx] if n else np.zeros(0, dtype=np.int16)
    cat_idx, categories = _dict_column(table.column("category").combine_chunks())
    act_idx, actions = _dict_column(table.column("action").combine_chunks())
    own_idx, owners = _dict_column(pc.fill_null(table.column("owner").combine_chunks(), ""))
    owner = own_idx.astype(np.int32)
    if "" in owners:
        owner[owner == owners.index("")] = -1

    def ts_col(name: str, fill: int, table: pa.Table = table) -> npt.NDArray[np.int64]:
        col = pc.cast(table.column(name).combine_chunks(), pa.int64())
        return pc.fill_null(col, fill).to_numpy(zero_copy_only=False).astype(np.int64)

    columns: dict[str, Any] = {
        # each column as narrow as its values allow (matchers.columns): most lists hold a few codes each
        "list_idx": narrow(table.column("list_idx").to_numpy()),
        "key_code": key_codes,
        "country": narrow(country),
        "priority": table.column("priority").to_numpy().astype(np.int8),
        "category": narrow(cat_idx),
        "action": narrow(act_idx),
        "owner": narrow(owner),
        "valid_from": Times.of(ts_col("valid_from", int(TS_MIN))),
        "valid_until": Times.of(ts_col("valid_until", int(TS_MAX))),
        "entry_id": table.column("entry_id").combine_chunks(),
        "note": compact_text(table.column("note")),
        "plate": Plates.of(table.column("plate"), lengths, is_pat | (lengths > PACKED_MAX_LEN)),
        "long_keys": long_keys,
        "pattern_keys": pattern_keys,
        "countries": countries,
        "categories": categories,
        "actions": actions,
        "owners": owners,
    }
    del table, keys, plain_keys

    step("shards", 0.4)
    plain = np.nonzero(~is_pat)[0].astype(np.int32)
    pf = fcodes[plain]
    order = np.argsort(pf)
    by_code = pf[order]
    shard_of = (by_code % n_shards).astype(np.int16)
    # a stable sort by shard keeps codes sorted within each shard
    order2 = np.argsort(shard_of, kind="stable")
    sorted_codes = by_code[order2]
    sorted_rows = plain[order][order2]
    bounds = np.searchsorted(shard_of[order2], np.arange(n_shards + 1), side="left")
    blooms: list[BloomFilter] = []
    shard_codes: list[npt.NDArray[np.int64]] = []
    shard_rows: list[npt.NDArray[np.int32]] = []
    for s in range(n_shards):
        a, b = int(bounds[s]), int(bounds[s + 1])
        codes_s = np.ascontiguousarray(sorted_codes[a:b])
        shard_codes.append(codes_s)
        shard_rows.append(np.ascontiguousarray(sorted_rows[a:b]))
        if with_blooms:
            blooms.append(build_bloom(codes_s, fp_rate, backend))
        step("bloom", 0.4 + 0.55 * (s + 1) / n_shards)
    del sorted_codes, sorted_rows, order, shard_of, pf, fcodes
    word_filter = build_word_filter(by_code)  # every plain entry's fuzzy code: the batch pre-check
    del by_code

    patterns = PatternIndex([(int(r), pattern_keys[int(r)]) for r in pat_rows])
    version = version_of(infos)
    step("done", 1.0)
    return HotlistIndex(
        version=version,
        lists=tuple(infos),
        n_shards=n_shards,
        backend=backend,
        fp_rate=fp_rate,
        blooms=blooms,
        shard_codes=shard_codes,
        shard_rows=shard_rows,
        columns=columns,
        patterns=patterns,
        build_seconds=time.perf_counter() - started,
        word_filter=word_filter,
    )


def build_layer(
    base: HotlistIndex,
    lists: Sequence[ListSnapshot],
    removed: npt.NDArray[np.int64],
    *,
    with_blooms: bool = True,
) -> tuple[tuple[ListInfo, ...], HotlistIndex]:
    """The list infos and overlay index of a layer over ``base``.

    ``lists`` are the base's lists, in its order, each with the deltas' surviving
    upserts as its table and the digest of *all* its current files (so the version
    id is the one a full rebuild would get); ``removed`` are the base rows dropped.
    """
    if [s.list_id for s in lists] != list(base.list_ids):
        msg = "a layer must have the lists of its base, in the same order"
        raise ValueError(msg)
    overlay = build_index(lists, n_shards=1, fp_rate=base.fp_rate, backend=base.backend, with_blooms=with_blooms)
    gone_lists = base.list_idx[removed]
    gone = np.bincount(gone_lists, minlength=len(lists))
    gone_pat = np.bincount(gone_lists[base.key_code[removed] == -1], minlength=len(lists))  # patterns have no code
    infos = tuple(
        ListInfo(
            b.list_id,
            b.name,
            b.fuzzy,
            b.entries - int(gone[i]) + o.entries,
            b.patterns - int(gone_pat[i]) + o.patterns,
            o.digest,
        )
        for i, (b, o) in enumerate(zip(base.lists, overlay.lists, strict=True))
    )
    return infos, overlay


def load_index(
    settings: HotlistSettings, progress: Progress | None = None, *, with_blooms: bool = True
) -> HotlistIndex:
    """Load and validate every list, then build the index; raises SnapshotError on bad input."""
    started = time.perf_counter()
    lists = load_hotlists(settings.dir)
    index = build_index(
        lists,
        n_shards=settings.shards,
        fp_rate=settings.bloom_fp_rate,
        backend=settings.bloom_backend,
        progress=progress,
        with_blooms=with_blooms,
    )
    log.info(
        "index_built",
        version=index.version,
        lists=len(index.lists),
        entries=len(index),
        seconds=round(time.perf_counter() - started, 3),
    )
    return index


def load_layer(
    base: HotlistIndex,
    directory: str | Path,
    new_files: Mapping[str, Sequence[str]],
    *,
    with_blooms: bool = True,
) -> LayeredIndex:
    """Apply the delta files that arrived after ``base`` was built, without rebuilding it.

    ``new_files`` maps a list id to the names of its new delta files; they must be
    the last files of the list. Raises :class:`SnapshotError` on a bad delta (file,
    row and column), like a full load.
    """
    started = time.perf_counter()
    root = Path(directory)
    snaps: list[ListSnapshot] = []
    removed: list[npt.NDArray[np.int64]] = []
    for pos, info in enumerate(base.lists):
        list_dir = root / info.list_id
        spec = read_list_spec(list_dir)
        name, fuzzy = spec.name, spec.fuzzy
        if (name, fuzzy) != (info.name, info.fuzzy):
            msg = f"{list_dir}: list.toml changed since version {base.version}; a full rebuild is needed"
            raise SnapshotError(msg)
        files = list_files(list_dir)
        wanted = list(new_files.get(info.list_id, ()))
        extra = files[len(files) - len(wanted) :] if wanted else ()
        if [f.path.name for f in extra] != wanted or any(f.kind != "delta" for f in extra):
            msg = f"{list_dir}: {wanted} are not the newest delta files of the list"
            raise SnapshotError(msg)
        table, ids = load_deltas(extra, spec)
        if len(ids):
            # build_index keeps each list's rows together, in list order
            lo, hi = (int(x) for x in np.searchsorted(base.list_idx, [pos, pos + 1]))
            named = pc.is_in(base.entry_id.slice(lo, hi - lo), value_set=ids)
            removed.append(np.flatnonzero(named.to_numpy(zero_copy_only=False)) + lo)
        snaps.append(
            ListSnapshot(info.list_id, name, fuzzy, files, table, list_digest(files, name, fuzzy, spec.identity()))
        )
    rows = np.concatenate(removed) if removed else np.zeros(0, np.int64)
    infos, overlay = build_layer(base, snaps, rows, with_blooms=with_blooms)
    layer = LayeredIndex(
        version=version_of(infos),
        lists=infos,
        base=base,
        removed=frozenset(rows.tolist()),
        overlay=overlay,
        build_seconds=time.perf_counter() - started,
    )
    log.info(
        "layer_built",
        version=layer.version,
        base_version=base.version,
        removed=len(layer.removed),
        added=len(overlay),
        seconds=round(layer.build_seconds, 3),
    )
    return layer


#: A live change accepted from the change topic: its sequence number and its validated
#: one-row table (SCHEMA), or None for a delete.
Change = tuple[int, pa.Table | None]


def build_changes(inner: FilesVersion, changes: Mapping[str, Mapping[str, Change]]) -> Index:
    """``inner`` with the live changes on top (DESIGN section 5.2); ``inner`` itself when there are none.

    ``changes`` maps a list id to its changed entries (entry id -> change). The
    version id is derived from ``inner``'s and the changes', so every hit carries
    the version it was matched against.
    """
    if not any(changes.values()):
        return inner
    h = hashlib.blake2b(inner.version.encode(), digest_size=8)
    snaps: list[ListSnapshot] = []
    touched: set[tuple[str, str]] = set()
    n = 0
    for info in inner.lists:
        per = changes.get(info.list_id, {})
        tables = []
        for entry_id in sorted(per):
            seq, table = per[entry_id]
            touched.add((info.list_id, entry_id))
            h.update(f"\x1e{info.list_id}\x1f{entry_id}\x1f{seq}".encode())
            n += 1
            if table is not None:
                tables.append(table)
        table = pa.concat_tables(tables).combine_chunks() if tables else SCHEMA.empty_table()
        snaps.append(ListSnapshot(info.list_id, info.name, info.fuzzy, (), table, info.digest))
    overlay = build_index(snaps, n_shards=1, with_blooms=True)
    kept = {i.list_id: i.entries for i in inner.lists}
    gone: dict[str, int] = {}
    for list_id in _touched_entries(inner, touched):  # entries the changes replace or delete that the inner version has
        gone[list_id] = gone.get(list_id, 0) + 1
    lists = tuple(
        ListInfo(
            i.list_id,
            i.name,
            i.fuzzy,
            kept[i.list_id] - gone.get(i.list_id, 0) + o.entries,
            i.patterns + o.patterns,
            i.digest,
        )
        for i, o in zip(inner.lists, overlay.lists, strict=True)
    )
    return ChangedIndex(
        version=h.hexdigest(), lists=lists, inner=inner, touched=frozenset(touched), overlay=overlay, changes=n
    )


def _touched_entries(inner: FilesVersion, touched: set[tuple[str, str]]) -> list[str]:
    """The list ids of the inner version's entries that ``touched`` names (one per entry)."""
    base = inner.base if isinstance(inner, LayeredIndex) else inner
    out = []
    removed = inner.removed if isinstance(inner, LayeredIndex) else frozenset()
    for row in base.rows_named({e for _, e in touched}):
        if row in removed:
            continue
        list_id = base.list_ids[base.list_idx[row]]
        if (list_id, base.entry_id[row].as_py()) in touched:
            out.append(list_id)
    if isinstance(inner, LayeredIndex):
        out += [e.list_id for e in inner.overlay.entries() if (e.list_id, e.entry_id) in touched]
    return out


def _identity(index: HotlistIndex) -> pa.Table:
    """One row per entry of a full version: what makes an entry "added" when it changes (DESIGN section 10)."""
    return pa.table(
        {
            "list_id": pc.take(pa.array(index.list_ids, pa.string()), pa.array(index.list_idx.astype(np.int32))),
            "entry_id": index.entry_id,
            # the plate as its shape and key (matchers.columns.Plates): the same plate gives the same pair
            "plate": index.plate.identity(),
            "key_code": pa.array(np.asarray(index.key_code)),
            # "" for any country: a join never matches nulls
            "country": pc.fill_null(
                pc.take(pa.array(index.countries, pa.string()), pa.array(index.country.astype(np.int32))), ""
            ),
            "valid_from": pa.array(index.valid_from.full()),
            "valid_until": pa.array(index.valid_until.full()),
            "row": pa.array(np.arange(len(index), dtype=np.int64)),
        }
    )


def added_entries(new: Index, old: Index) -> tuple[HotlistIndex | None, list[tuple[str, str]]]:
    """The entries of ``new`` that ``old`` does not have as they are (a new id, or another plate, country or
    validity), as a small index of their own, and their (list, entry) ids; (None, []) when there are none."""

    def table(index: Index) -> tuple[pa.Table, list[Any]]:
        index = index.files_version()
        if isinstance(index, LayeredIndex):
            base = _identity(index.base)
            keep = np.ones(len(index.base), dtype=bool)
            keep[list(index.removed)] = False
            over = _identity(index.overlay)
            over = over.set_column(
                over.schema.get_field_index("row"), "row", pa.array(np.arange(len(index.overlay)) + len(index.base))
            )
            return pa.concat_tables([base.filter(pa.array(keep)), over]), [index.base, index.overlay]
        return _identity(index), [index]

    new_table, parts = table(new)
    old_table, _ = table(old)
    keys = ["list_id", "entry_id", "plate", "key_code", "country", "valid_from", "valid_until"]
    fresh = new_table.join(old_table.drop_columns(["row"]), keys=keys, join_type="left anti")
    if fresh.num_rows == 0:
        return None, []
    entries = []
    for row in sorted(fresh.column("row").to_pylist()):
        part = parts[0] if row < len(parts[0]) else parts[1]
        entries.append(part.entry(row if part is parts[0] else row - len(parts[0])))
    by_list: dict[str, list[dict[str, Any]]] = {}
    for e in entries:
        by_list.setdefault(e.list_id, []).append(
            {
                "entry_id": e.entry_id,
                "plate": e.plate,
                "key": e.key,
                "country": e.country,
                "category": e.category,
                "priority": e.priority,
                "action": e.action,
                "valid_from": e.valid_from,
                "valid_until": e.valid_until,
                "owner": e.owner,
                "note": e.note,
            }
        )
    infos = new.files_version().lists
    snaps = [
        ListSnapshot(
            i.list_id, i.name, i.fuzzy, (), pa.Table.from_pylist(by_list.get(i.list_id, []), schema=SCHEMA), i.digest
        )
        for i in infos
    ]
    return build_index(snaps, n_shards=1), [(e.list_id, e.entry_id) for e in entries]
