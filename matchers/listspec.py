"""A list's ``list.toml`` (DESIGN section 5.1): its name, fuzzy flag, and how its source's own export maps
to our columns; and that mapping, applied to a file as read."""

from __future__ import annotations

import codecs
import tomllib
from pathlib import Path
from typing import Annotated

import msgspec
import pyarrow as pa
import pyarrow.compute as pc

from feblam.errors import SnapshotError
from matchers.hotdir import is_regular
from matchers.rawfile import RawFile, as_string, first_true

#: Our columns a snapshot must have, and those it may have (DESIGN section 5).
REQUIRED = ("entry_id", "plate", "category", "priority", "action")
OPTIONAL = ("country", "valid_from", "valid_until", "owner", "note")


class CsvDialect(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``[csv]`` of a ``list.toml``: how the list's CSV files are written."""

    delimiter: Annotated[str, msgspec.Meta(min_length=1, max_length=1)] = ","
    encoding: str = "utf-8"  # any Python codec name
    quote: Annotated[str, msgspec.Meta(min_length=1, max_length=1)] = '"'


class ListSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A list's ``list.toml`` (DESIGN section 5.1): its name, fuzzy flag, and how to read its source's own export."""

    name: str = ""
    display_name: str = ""
    fuzzy: bool = True
    csv: CsvDialect = msgspec.field(default_factory=CsvDialect)
    #: our column -> the source's column
    columns: dict[str, str] = msgspec.field(default_factory=dict)
    #: our column -> {the source's value -> ours}
    values: dict[str, dict[str, str | int]] = msgspec.field(default_factory=dict)
    #: our column -> its value, for a column the source does not have
    defaults: dict[str, str | int] = msgspec.field(default_factory=dict)

    @property
    def mapped(self) -> bool:
        return bool(self.columns or self.values or self.defaults)

    def identity(self) -> str:
        """What of the spec changes the entries (part of the list's digest)."""
        if not self.mapped and self.csv == CsvDialect():
            return ""
        return msgspec.json.encode(msgspec.structs.replace(self, name="", display_name="")).decode()


#: The columns a mapping may name (ours).
MAPPABLE = frozenset((*REQUIRED, *OPTIONAL, "op"))


def read_list_spec(list_dir: Path) -> ListSpec:
    """A list's ``list.toml`` (defaults without one); a bad key or value names the file and the key."""
    path = list_dir / "list.toml"
    if not path.exists() and not path.is_symlink():
        return ListSpec(name=list_dir.name)
    if not is_regular(path):
        msg = f"{path}: not a regular file"
        raise SnapshotError(msg)
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        msg = f"{path}: not valid TOML: {exc}"
        raise SnapshotError(msg) from None
    try:
        spec = msgspec.convert(doc, ListSpec)
    except msgspec.ValidationError as exc:
        message, _, where = str(exc).partition(" - at `$")
        msg = f"{path}: {where.rstrip('`').lstrip('.') or 'list.toml'}: {message}"
        raise SnapshotError(msg) from None
    for section in ("columns", "values", "defaults"):
        unknown = sorted(set(getattr(spec, section)) - MAPPABLE)
        if unknown:
            msg = f"{path}: [{section}] names {', '.join(map(repr, unknown))}, not one of our columns ({', '.join(sorted(MAPPABLE))})"
            raise SnapshotError(msg)
    try:
        codecs.lookup(spec.csv.encoding)
    except LookupError:
        msg = f"{path}: csv.encoding {spec.csv.encoding!r} is not a known codec"
        raise SnapshotError(msg) from None
    return msgspec.structs.replace(spec, name=spec.name or spec.display_name or list_dir.name)


def apply_mapping(raw: RawFile, spec: ListSpec, kind: str = "full") -> RawFile:
    """The source's columns renamed to ours, its values translated, defaults added (DESIGN section 5.1).

    A mapped source column missing from the file, or a value absent from its
    ``[values]`` table, is an error naming the file, row, source column and value.
    """
    if not spec.mapped:
        return raw
    table = raw.table
    names = list(table.column_names)
    # A full file has no op column; a delta may leave out what its deletes do not need (validation
    # then asks for what its upserts need). Any other mapped source column must be in the file.
    optional = {"op"} if kind == "full" else set(MAPPABLE) - {"entry_id", "op"}
    columns = {o: s for o, s in spec.columns.items() if not (o in optional and s not in names)}
    for ours, theirs in columns.items():
        if theirs not in names:
            msg = f"{raw.path}: column {theirs!r} (mapped to {ours!r} in list.toml) is missing; the file has {', '.join(names)}"
            raise SnapshotError(msg)
        if ours in names and ours != theirs and ours not in columns.values():
            msg = f"{raw.path}: column {ours!r} is in the file and also mapped from {theirs!r}; keep one"
            raise SnapshotError(msg)
    renamed = {theirs: ours for ours, theirs in columns.items()}
    table = table.rename_columns([renamed.get(n, n) for n in names])
    raw.source = {ours: theirs for ours, theirs in columns.items() if ours != theirs}
    raw.table = table
    for ours, mapping in spec.values.items():
        if ours not in table.column_names:
            continue  # absent column: a default (or validation) takes over
        col = pc.utf8_trim_whitespace(as_string(raw, ours))
        present = pc.and_(pc.is_valid(col), pc.not_equal(col, ""))
        keys = pa.array(list(mapping), type=pa.string())
        known = pc.is_in(col, value_set=keys)
        row = first_true(pc.invert(pc.fill_null(known, False)), present)
        if row is not None:
            value = raw.table.column(ours)[row].as_py()
            msg = (
                f"{raw.where(row, ours)}: value {value!r} is not in [values.{ours}] of list.toml "
                f"(known: {', '.join(map(repr, mapping))})"
            )
            raise SnapshotError(msg)
        translated = pc.take(
            pa.array([str(v) for v in mapping.values()], type=pa.string()), pc.index_in(col, value_set=keys)
        )
        table = table.set_column(table.column_names.index(ours), ours, translated)
        raw.table = table
    for ours, value in spec.defaults.items():
        if ours not in table.column_names:
            table = table.append_column(ours, pa.array([str(value)] * table.num_rows, type=pa.string()))
    raw.table = table
    return raw
