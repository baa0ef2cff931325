"""Reading and validating hotlist snapshots (DESIGN section 5), with pyarrow.

A list is its latest full snapshot plus every later delta in sequence order
(which files those are is :mod:`matchers.hotdir`). Three readers (Parquet, CSV,
JSONL) give Arrow tables of the source columns (:class:`~matchers.rawfile.RawFile`);
the list's ``list.toml`` maps them to ours (:mod:`matchers.listspec`);
validation normalises them to :data:`SCHEMA`; a list is assembled from its files.

Validation is vectorised: the common path touches no row in Python; when a
check fails, the offending row is located and reported with file, row (1-based
data row, and the file line for text formats) and column.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from feblam.errors import SnapshotError
from feblam.logs import get_logger
from feblam.model import ACTIONS
from matchers.hotdir import SNAPSHOT_NAME, SnapshotFile, list_digest, list_dirs, list_files
from matchers.listspec import REQUIRED, CsvDialect, ListSpec, apply_mapping, read_list_spec
from matchers.normalize import country_code, is_pattern, pattern_key, plate_key
from matchers.rawfile import RawFile, as_string, first_true

log = get_logger(__name__)


#: Schema of a validated, normalised snapshot table (one per list).
SCHEMA = pa.schema(
    [
        ("entry_id", pa.string()),
        ("plate", pa.string()),
        ("key", pa.string()),
        ("country", pa.string()),
        ("category", pa.string()),
        ("priority", pa.int8()),
        ("action", pa.string()),
        ("valid_from", pa.timestamp("us", tz="UTC")),
        ("valid_until", pa.timestamp("us", tz="UTC")),
        ("owner", pa.string()),
        ("note", pa.string()),
    ]
)


@dataclass(frozen=True, slots=True)
class ListSnapshot:
    """One hotlist after loading: its settings, the files used and the validated entries."""

    list_id: str
    name: str
    fuzzy: bool
    files: tuple[SnapshotFile, ...]
    table: pa.Table  # SCHEMA
    digest: str


def _read_parquet(path: Path) -> RawFile:
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        msg = f"{path}: unreadable Parquet file: {exc}"
        raise SnapshotError(msg) from None
    return RawFile(path, table, lambda row: None)


def _read_csv(path: Path, dialect: CsvDialect | None = None) -> RawFile:
    d = dialect or CsvDialect()
    try:
        with path.open("rb") as fh:
            header = fh.readline().decode(d.encoding).lstrip("\ufeff").strip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        msg = f"{path}: unreadable CSV file ({d.encoding}): {exc}"
        raise SnapshotError(msg) from None
    names = [n.strip().strip(d.quote) for n in header.split(d.delimiter)]
    if not header or any(not n for n in names):
        msg = f"{path}: line 1: the CSV header {header!r} has an empty column name (delimiter {d.delimiter!r})"
        raise SnapshotError(msg)
    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=1, encoding=d.encoding),
            parse_options=pacsv.ParseOptions(delimiter=d.delimiter, quote_char=d.quote),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names},
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
            ),
        )
    except (OSError, pa.ArrowException, UnicodeDecodeError, LookupError) as exc:
        msg = f"{path}: unreadable CSV file: {exc}"
        raise SnapshotError(msg) from None
    # pyarrow skips blank lines; rows map to lines 2.. when there are none, which
    # is what a snapshot writer produces. Quoted newlines would shift this.
    return RawFile(path, table, lambda row: row + 2)


def _read_jsonl(path: Path) -> RawFile:
    rows: list[dict[str, Any]] = []
    lines: list[int] = []
    try:
        data = path.read_bytes()
    except OSError as exc:
        msg = f"{path}: unreadable file: {exc}"
        raise SnapshotError(msg) from None
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            msg = f"{path}: row {len(rows) + 1} (line {number}): not valid JSON: {exc}"
            raise SnapshotError(msg) from None
        if not isinstance(doc, dict):
            msg = f"{path}: row {len(rows) + 1} (line {number}): not a JSON object"
            raise SnapshotError(msg)
        rows.append(doc)
        lines.append(number)
    return _rows_raw(path, rows, lambda row: lines[row])


def _rows_raw(origin: Path, rows: list[dict[str, Any]], line_of: Callable[[int], int | None]) -> RawFile:
    """JSON objects as a table of text columns (every value as the source wrote it)."""
    names: dict[str, None] = {}
    for doc in rows:
        names.update(dict.fromkeys(doc))
    columns = {
        name: pa.array(
            [None if (v := doc.get(name)) is None else v if isinstance(v, str) else _jsonl_text(v) for doc in rows],
            type=pa.string(),
        )
        for name in names
    }
    return RawFile(origin, pa.table(columns) if columns else pa.table({}), line_of)


def load_rows(rows: list[dict[str, Any]], origin: str, kind: str = "delta") -> tuple[pa.Table, pa.Array | None]:
    """Validate rows in our column names (a change from the change topic) like a snapshot file of ``kind``."""
    return validate(_rows_raw(Path(origin), rows, lambda _row: None), kind)


def _jsonl_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return orjson.dumps(value).decode()


_READERS = {"parquet": _read_parquet, "csv": _read_csv, "jsonl": _read_jsonl}


def _required_text(raw: RawFile, name: str, mask: pa.Array | None) -> pa.Array:
    """A text column that must be non-empty on the rows in ``mask`` (all rows when None)."""
    trimmed = pc.utf8_trim_whitespace(as_string(raw, name))
    bad = pc.fill_null(pc.equal(trimmed, ""), True)  # null: missing too
    row = first_true(bad, mask)
    if row is not None:
        msg = f"{raw.where(row, name)}: value is missing"
        raise SnapshotError(msg)
    return trimmed


def _optional_text(raw: RawFile, name: str, n: int) -> pa.Array:
    if name not in raw.table.column_names:
        return pa.nulls(n, pa.string())
    col = pc.utf8_trim_whitespace(as_string(raw, name))
    return pc.if_else(pc.equal(col, ""), pa.scalar(None, pa.string()), col)


def _priority(raw: RawFile, mask: pa.Array | None) -> pa.Array:
    col = raw.table.column("priority").combine_chunks()
    n = len(col)
    if pa.types.is_integer(col.type):
        values = pc.cast(col, pa.int64())
    else:
        text = pc.utf8_trim_whitespace(as_string(raw, "priority"))
        ok = pc.fill_null(pc.match_substring_regex(text, r"^[0-9]+(\.0*)?$"), False)
        row = first_true(pc.invert(ok), mask)
        if row is not None:
            msg = f"{raw.where(row, 'priority')}: value {text[row].as_py()!r} is not an integer 1..5"
            raise SnapshotError(msg)
        digits = pc.replace_substring_regex(pc.fill_null(text, "0"), r"\.0*$", "")
        values = pc.cast(pc.if_else(pc.greater(pc.utf8_length(digits), 3), "9", digits), pa.int64())
    out_of_range = pc.fill_null(pc.or_(pc.less(values, 1), pc.greater(values, 5)), True)
    row = first_true(out_of_range, mask)
    if row is not None:
        value = raw.table.column("priority")[row].as_py()
        msg = f"{raw.where(row, 'priority')}: value {value!r} is not an integer 1..5"
        raise SnapshotError(msg)
    return (
        pc.cast(pc.if_else(pc.is_valid(values), values, pa.scalar(5, pa.int64())), pa.int8())
        if n
        else pa.array([], pa.int8())
    )


def _timestamps(raw: RawFile, name: str, n: int) -> pa.Array:
    target = pa.timestamp("us", tz="UTC")
    if name not in raw.table.column_names:
        return pa.nulls(n, target)
    col = raw.table.column(name).combine_chunks()
    if pa.types.is_timestamp(col.type):
        if col.type.tz is None:
            col = pc.assume_timezone(col, "UTC")
        return pc.cast(col, target)
    text = _optional_text(raw, name, n)
    try:
        return pc.cast(text, target)
    except pa.ArrowInvalid:
        pass
    values: list[datetime | None] = []
    for row, value in enumerate(text.to_pylist()):
        if value is None:
            values.append(None)
            continue
        try:
            ts = datetime.fromisoformat(value)
        except ValueError:
            msg = f"{raw.where(row, name)}: value {value!r} is not an ISO 8601 time"
            raise SnapshotError(msg) from None
        values.append(ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC))
    return pa.array(values, type=target)


def _keys(raw: RawFile, plates: pa.Array, mask: pa.Array | None) -> pa.Array:
    """Normalised keys (patterns keep ``?`` and ``*``).

    Vectorised for the usual plate (ASCII letters, digits, spaces, dashes and
    dots): plain substring removal, no regular expression. Any other plate (a
    pattern, a non-ASCII or unusual character) is normalised in Python.
    """
    text = pc.fill_null(plates, "")
    ascii_ok = pc.string_is_ascii(text)
    keys = pc.ascii_upper(text)
    for sep in ("-", " ", "."):
        keys = pc.replace_substring(keys, sep, "")
    plain = pc.and_(ascii_ok, pc.utf8_is_alnum(keys))
    rows = pc.indices_nonzero(pc.invert(plain)).to_pylist()
    if rows:
        fixed = keys.to_pylist()
        for row in rows:
            plate = text[row].as_py()
            fixed[row] = pattern_key(plate) if is_pattern(plate) else plate_key(plate)
        keys = pa.array(fixed, type=pa.string())
    empty = pc.equal(pc.utf8_length(keys), 0)
    if rows:
        literal = pc.replace_substring(pc.replace_substring(keys, "*", ""), "?", "")
        empty = pc.equal(pc.utf8_length(literal), 0)
    row = first_true(empty, mask)
    if row is not None:
        msg = f"{raw.where(row, 'plate')}: value {plates[row].as_py()!r} has no letter or digit"
        raise SnapshotError(msg)
    return keys


def _countries(raw: RawFile, n: int) -> pa.Array:
    text = _optional_text(raw, "country", n)
    encoded = pc.dictionary_encode(text)
    mapped: list[str | None] = []
    for value in encoded.dictionary.to_pylist():
        code = country_code(value)
        if code is None:
            row = first_true(pc.equal(text, value))
            msg = f"{raw.where(row or 0, 'country')}: value {value!r} is not a known country code"
            raise SnapshotError(msg)
        mapped.append(code)
    return pc.take(pa.array(mapped, type=pa.string()), encoded.indices)


def _string_hashes(values: pa.Array) -> np.ndarray | None:
    """A 64-bit hash of each ASCII string, vectorised over the padded bytes; None if not all ASCII."""
    n = len(values)
    if not pc.all(pc.string_is_ascii(values)).as_py():
        return None
    width = int(pc.max(pc.binary_length(values)).as_py() or 0)
    width8 = max(8, (width + 7) // 8 * 8)
    padded = pc.ascii_rpad(values, width=width8, padding="\x00")
    offsets = np.frombuffer(padded.buffers()[1], dtype=np.int32, count=n + 1, offset=padded.offset * 4)
    data = np.frombuffer(padded.buffers()[2], dtype=np.uint8, count=n * width8, offset=int(offsets[0]))
    words = data.reshape(n, width8).view(np.uint64)
    h = np.full(n, 0x9E3779B97F4A7C15, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for k in range(words.shape[1]):
            h ^= words[:, k]
            h *= np.uint64(0xBF58476D1CE4E5B9)
            h ^= h >> np.uint64(31)
    return h


def _unique_ids(raw: RawFile, ids: pa.Array) -> None:
    """Reject a repeated entry_id, naming both rows (hash-sort first; strings compared only on a hash tie)."""
    h = _string_hashes(ids) if len(ids) >= 100_000 else None
    if h is None:
        if pc.count_distinct(ids).as_py() == len(ids):
            return
    else:
        hs = np.sort(h)
        tie = np.nonzero(hs[1:] == hs[:-1])[0]
        if not tie.size:
            return
        suspects = set(hs[tie].tolist())
        rows_of_interest = np.nonzero(np.isin(h, list(suspects)))[0]
        values = {int(r): ids[int(r)].as_py() for r in rows_of_interest}
        seen_small: dict[str, int] = {}
        for row in sorted(values):
            value = values[row]
            if value in seen_small:
                msg = f"{raw.where(row, 'entry_id')}: value {value!r} already appears on row {seen_small[value] + 1}"
                raise SnapshotError(msg)
            seen_small[value] = row
        return
    seen: dict[str, int] = {}
    for row, value in enumerate(ids.to_pylist()):
        if value in seen:
            msg = f"{raw.where(row, 'entry_id')}: value {value!r} already appears on row {seen[value] + 1}"
            raise SnapshotError(msg)
        seen[value] = row


def validate(raw: RawFile, kind: str) -> tuple[pa.Table, pa.Array | None]:
    """Validate one file; returns the normalised table and, for deltas, the ``delete`` mask."""
    names = set(raw.table.column_names)
    n = raw.table.num_rows
    delete: pa.Array | None = None
    upsert_mask: pa.Array | None = None
    if kind == "delta":
        if "op" not in names:
            msg = f"{raw.path}: column 'op' is missing (a delta needs op = upsert or delete)"
            raise SnapshotError(msg)
        if "entry_id" not in names:
            msg = f"{raw.path}: column 'entry_id' is missing"
            raise SnapshotError(msg)
        op = pc.utf8_lower(pc.utf8_trim_whitespace(as_string(raw, "op")))
        bad = pc.fill_null(pc.invert(pc.is_in(op, pa.array(["upsert", "delete"]))), True)
        row = first_true(bad)
        if row is not None:
            msg = f"{raw.where(row, 'op')}: value {raw.table.column('op')[row].as_py()!r} is not upsert or delete"
            raise SnapshotError(msg)
        delete = pc.equal(op, "delete")
        upsert_mask = pc.invert(delete)
        if not pc.any(upsert_mask).as_py():
            ids = _required_text(raw, "entry_id", None)
            _unique_ids(raw, ids)
            empty = pa.table({f.name: pa.nulls(n, f.type) for f in SCHEMA}).set_column(0, "entry_id", ids)
            return empty.cast(SCHEMA), delete
    for name in REQUIRED:
        if name not in names:
            msg = f"{raw.path}: column {name!r} is missing"
            raise SnapshotError(msg)
    ids = _required_text(raw, "entry_id", None)
    _unique_ids(raw, ids)
    plates = _required_text(raw, "plate", upsert_mask)
    category = _required_text(raw, "category", upsert_mask)
    action = pc.utf8_lower(_required_text(raw, "action", upsert_mask))
    bad_action = pc.fill_null(pc.invert(pc.is_in(action, pa.array(sorted(ACTIONS)))), True)
    row = first_true(bad_action, upsert_mask)
    if row is not None:
        value = raw.table.column("action")[row].as_py()
        msg = f"{raw.where(row, 'action')}: value {value!r} is not one of {', '.join(sorted(ACTIONS))}"
        raise SnapshotError(msg)
    priority = _priority(raw, upsert_mask)
    valid_from = _timestamps(raw, "valid_from", n)
    valid_until = _timestamps(raw, "valid_until", n)
    inverted = pc.fill_null(pc.greater_equal(valid_from, valid_until), False)
    row = first_true(inverted)
    if row is not None:
        msg = f"{raw.where(row, 'valid_until')}: value {valid_until[row].as_py()} is not after valid_from {valid_from[row].as_py()}"
        raise SnapshotError(msg)
    table = pa.table(
        [
            ids,
            plates,
            _keys(raw, plates, upsert_mask),
            _countries(raw, n),
            category,
            priority,
            action,
            valid_from,
            valid_until,
            _optional_text(raw, "owner", n),
            _optional_text(raw, "note", n),
        ],
        schema=SCHEMA,
    )
    return table, delete


def load_file(path: Path, kind: str | None = None, spec: ListSpec | None = None) -> tuple[pa.Table, pa.Array | None]:
    """Read one snapshot file (in the dialect of ``spec``), map it to our columns, validate it."""
    m = SNAPSHOT_NAME.match(path.name)
    ext = m["ext"] if m else path.suffix.lstrip(".")
    kind = kind or (m["kind"] if m else "full")
    if ext not in _READERS:
        msg = f"{path}: unknown snapshot format {ext!r} (parquet, csv or jsonl)"
        raise SnapshotError(msg)
    if not path.is_file():
        msg = f"{path}: no such file"
        raise SnapshotError(msg)
    spec = spec or ListSpec()
    raw = _read_csv(path, spec.csv) if ext == "csv" else _READERS[ext](path)
    return validate(apply_mapping(raw, spec, kind), kind)


def apply_delta(current: pa.Table, delta: pa.Table, delete: pa.Array | None) -> pa.Table:
    """``current`` with every entry the delta names replaced by its upsert, or dropped by its delete."""
    if delete is None:  # pragma: no cover - validate() always returns a mask for deltas
        delete = pa.array([False] * delta.num_rows)
    touched = pc.is_in(current.column("entry_id"), value_set=delta.column("entry_id"))
    return pa.concat_tables([current.filter(pc.invert(touched)), delta.filter(pc.invert(delete))])


def load_deltas(files: Iterable[SnapshotFile], spec: ListSpec | None = None) -> tuple[pa.Table, pa.Array]:
    """Merge delta files on their own: the surviving upserts and every ``entry_id`` the deltas name.

    Applying them to a list is: drop the list's entries with one of those ids, add the upserts.
    """
    current = SCHEMA.empty_table()
    named: list[pa.Array] = []
    for snap in files:
        table, delete = load_file(snap.path, "delta", spec)
        current = apply_delta(current, table, delete)
        named.append(table.column("entry_id").combine_chunks())
    ids = pa.concat_arrays(named) if named else pa.array([], pa.string())
    return current.combine_chunks(), pc.unique(ids)


def load_list(list_dir: Path) -> ListSnapshot:
    """Load one list: latest full plus later deltas, merged by ``entry_id``."""
    spec = read_list_spec(list_dir)
    files = list_files(list_dir)
    current = SCHEMA.empty_table()
    for snap in files:
        table, delete = load_file(snap.path, snap.kind, spec)
        current = table if snap.kind == "full" else apply_delta(current, table, delete)
    return ListSnapshot(
        list_id=list_dir.name,
        name=spec.name,
        fuzzy=spec.fuzzy,
        files=files,
        table=current.combine_chunks(),
        digest=list_digest(files, spec.name, spec.fuzzy, spec.identity()),
    )


def load_hotlists(directory: str | Path) -> list[ListSnapshot]:
    """Load every list folder of a hotlist directory (sorted by list id)."""
    return [load_list(d) for d in list_dirs(directory)]
