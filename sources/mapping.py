"""A camera vendor as a mapping file: where each canonical field of DESIGN 2 sits in the vendor's payload and
how to read it, compiled at start into the same fast path the hand-written vendors have.

A mapping is TOML (``vendors/NAME.toml``)::

    name = "vendor-b"
    format = "json"                      # json | delimited
    documentation = "DESIGN 3; the vendor's interface guide, section 4.2"
    [fields]
    camera_id  = { path = "CameraId" }
    ts         = { path = "TimestampMs", time = "epoch_ms" }
    plate_raw  = { path = "Plate" }
    confidence = { path = "Conf" }       # scale = 0.01 for a vendor that gives 0..100
    country_raw = { path = "Country", table = { BEL = "BE" } }

JSON paths are dotted (``camera.id``); a delimited line names its fields by
``column`` (0-based) and ``separator``. Times: ``iso`` (with its offset),
``iso_utc`` (a time without offset is UTC), ``epoch_ms``, ``epoch_s``, or
``local`` with ``format = "yyyyMMddHHmmssfff"`` and ``zone`` (an IANA zone, its
daylight-saving gap refused, the repeated hour taken as its first occurrence).
``camera_id``, ``ts`` and ``plate_raw`` are required; every other field may be
absent, null or empty. A payload that does not fit is a
:class:`~feblam.errors.DecodeError` naming the field's path (or ``name``) and
the value, as the hand-written decoders word it.

:func:`compile_mapping` gives a :class:`~sources.vendors.Vendor`. For JSON the
payload is decoded by msgspec into a struct generated from the mapping, whose
field types carry the checks (the fast path, validation in C); a payload that
struct refuses goes field by field through the same checks the hand-written
decoders use (:mod:`sources.vendors._fields`), which accept the lenient forms
and word the error.
"""

from __future__ import annotations

import functools
import math
import re
import tomllib
import typing
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from msgspec import Meta

from feblam.errors import ConfigError, DecodeError, Skipped
from feblam.model import EPOCH
from feblam.serde import READ_FIELDS
from sources.vendors import Vendor
from sources.vendors._fields import (
    MAX_EPOCH_MS,
    MAX_PAYLOAD_BYTES,
    AwareTime,
    EpochMs,
    Lane,
    Lat,
    Lon,
    ReadFields,
    Text,
    blank_none,
    check_size,
    epoch_ms,
    fast,
    iso_time,
    json_object,
    make_read,
    opt_float,
    opt_lane,
    opt_str,
    req_str,
    screen_struct,
    text_line,
)

CanonicalField = Literal[
    "read_id",
    "camera_id",
    "vendor",
    "ts",
    "plate_raw",
    "country_raw",
    "confidence",
    "lat",
    "lon",
    "lane",
    "direction",
    "image_ref",
]
REQUIRED = ("camera_id", "ts", "plate_raw")
#: ReadFields' order: the canonical read's fields, defined once (DESIGN 2, feblam.serde.READ_FIELDS).
ORDER: tuple[str, ...] = READ_FIELDS
if typing.get_args(CanonicalField) != ORDER or tuple(f.name for f in msgspec.structs.fields(ReadFields)) != ORDER:
    msg = "sources.mapping.CanonicalField must list the canonical read's fields (feblam.serde.READ_FIELDS) in order"
    raise ImportError(msg)
COMPACT_LOCAL = "yyyyMMddHHmmssfff"


class FieldSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Where one canonical field sits and how it is read."""

    path: Annotated[str, Meta(pattern=r"^[^\s]*$")] = ""
    column: Annotated[int, Meta(ge=-1, le=255)] = -1
    name: str = ""
    time: Literal["", "iso", "iso_utc", "epoch_ms", "epoch_s", "local"] = ""
    format: str = ""
    zone: str = ""
    max: Annotated[float, Meta(gt=0)] = 1.0  # confidence: the vendor's full scale (100: a percentage)
    required: bool = False  # an optional field this vendor always sends: its absence is refused
    table: dict[str, str] = msgspec.field(default_factory=dict)


class EventRule(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Which events a vendor's payloads are: the value at ``path`` and the values that make the rule hold."""

    path: Annotated[str, Meta(min_length=1)]
    values: Annotated[tuple[str, ...], Meta(min_length=1)]


class Mapping(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One vendor's mapping file."""

    name: Annotated[str, Meta(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")]
    format: Literal["json", "delimited", "xml"]
    #: XML: prefix -> namespace URI, for the paths (``tt:Data/tt:SimpleItem[@Name='text']/@Value``).
    namespaces: dict[str, str] = msgspec.field(default_factory=dict)
    #: XML: a payload is a read only when one of these holds (empty: always) ...
    take: tuple[EventRule, ...] = ()
    #: ... and none of these (an Axis ``lost``, an ISAPI ``inactive``): otherwise it is skipped, not dead-lettered.
    skip: tuple[EventRule, ...] = ()
    documentation: str = ""
    separator: Annotated[str, Meta(min_length=1, max_length=4)] = ";"
    columns: Annotated[int, Meta(ge=0, le=255)] = 0
    min_columns: Annotated[int, Meta(ge=0, le=255)] = 0
    fields: dict[CanonicalField, FieldSpec] = msgspec.field(default_factory=dict)


def load_mapping(path: Path) -> Mapping:
    """A mapping file, checked; every mistake one line naming the file and the key."""
    try:
        doc = tomllib.loads(path.read_text())
    except OSError as exc:
        msg = f"{path}: cannot read the vendor mapping ({exc.strerror})"
        raise ConfigError(msg) from None
    except tomllib.TOMLDecodeError as exc:
        msg = f"{path}: not valid TOML ({exc})"
        raise ConfigError(msg) from None
    try:
        mapping = msgspec.convert(doc, Mapping)
    except msgspec.ValidationError as exc:
        msg = f"{path}: {exc}"
        raise ConfigError(msg) from None
    problems = mapping_problems(mapping)
    if problems:
        raise ConfigError("\n".join(f"{path}: {p}" for p in problems))
    return mapping


def mapping_problems(m: Mapping) -> list[str]:
    problems = [f"fields.{f}: required (where the {f} sits)" for f in REQUIRED if f not in m.fields]
    for f, spec in m.fields.items():
        where = f"fields.{f}"
        if m.format == "json" and not spec.path:
            problems.append(f"{where}: give path (a dotted JSON path)")
        if m.format == "json" and ".." in spec.path or spec.path.startswith(".") and m.format == "json":
            problems.append(f"{where}.path {spec.path!r}: a dotted JSON path (camera.id)")
        if m.format == "xml":
            problems += _xml_path_problems(where, spec.path, m.namespaces)
        if m.format == "delimited" and spec.column < 0:
            problems.append(f"{where}: give column (0-based)")
        if (f == "ts") != bool(spec.time):
            problems.append(f"{where}: time = iso, iso_utc, epoch_ms, epoch_s or local is for ts only, and ts needs it")
        if spec.time == "local":
            if spec.format != COMPACT_LOCAL and ("%Y" not in spec.format or "%H" not in spec.format):
                problems.append(
                    f"{where}.format = {spec.format!r}: {COMPACT_LOCAL}, or a strptime format with %Y and %H"
                )
            try:
                ZoneInfo(spec.zone)
            except (ZoneInfoNotFoundError, ValueError):
                problems.append(f"{where}.zone = {spec.zone!r}: not an IANA time zone (e.g. Europe/Brussels)")
        if spec.max != 1.0 and f != "confidence":
            problems.append(f"{where}.max: for confidence only")
        if spec.table and f not in ("country_raw", "direction"):
            problems.append(f"{where}.table: for country_raw and direction only")
    if (m.take or m.skip) and m.format != "xml":
        problems.append("take and skip: for XML events only today")
    for kind, rules in (("take", m.take), ("skip", m.skip)):
        for i, rule in enumerate(rules):
            problems += _xml_path_problems(f"{kind}[{i}]", rule.path, m.namespaces)
    if m.format == "delimited":
        top = max((s.column for s in m.fields.values()), default=-1) + 1
        if m.columns and m.columns < top:
            problems.append(f"columns = {m.columns}: fields name column {top - 1}")
    return problems


# ---------------------------------------------------------------- reading one value


def _local_reader(zone: str, fmt: str) -> Callable[[str, str], datetime]:
    """A local time in ``zone`` -> aware UTC: ``yyyyMMddHHmmssfff`` (in Brussels: vendor-c's own reader and
    caches) or a ``strptime`` format (``%d/%m/%Y %H:%M:%S``). The spring-forward gap is refused; a time in the
    repeated autumn hour is its first occurrence (the camera gives no offset to tell)."""
    if zone == "Europe/Brussels" and fmt == COMPACT_LOCAL:
        from sources.vendors.vendor_c import local_to_utc

        return lambda text, name: local_to_utc(req_str(text, name))
    tz = ZoneInfo(zone)

    def naive_of(text: str) -> datetime:
        if fmt != COMPACT_LOCAL:
            return datetime.strptime(text, fmt)  # noqa: DTZ007 - the zone is set next
        if len(text) != 17 or not text.isdigit() or not text.isascii():
            msg = f"time {text!r} is not {COMPACT_LOCAL}"
            raise DecodeError(msg)
        return datetime.strptime(text[:14], "%Y%m%d%H%M%S").replace(microsecond=int(text[14:]) * 1000)  # noqa: DTZ007

    def read(text: str, name: str) -> datetime:
        text = req_str(text, name)
        try:
            naive = naive_of(text)
        except ValueError:
            msg = f"{name} {text!r} is not a possible time in the format {fmt}"
            raise DecodeError(msg) from None
        if naive.tzinfo is not None:
            return naive.astimezone(UTC)
        local = naive.replace(tzinfo=tz)
        back = local.astimezone(UTC).astimezone(tz)
        if back.replace(tzinfo=None) != naive:
            msg = f"{name} {text!r} does not exist in {zone} (daylight-saving gap)"
            raise DecodeError(msg)
        return local.astimezone(UTC)

    return read


def _epoch_s(value: Any, name: str) -> datetime:
    if type(value) is int and 0 <= value < MAX_EPOCH_MS // 1000:
        return EPOCH + timedelta(seconds=value)
    if isinstance(value, float) and not math.isnan(value):
        return epoch_ms(round(value * 1000), name)
    return epoch_ms(value * 1000 if type(value) is int else value, name)


def _time_reader(spec: FieldSpec) -> Callable[[Any, str], datetime]:
    if spec.time == "iso":
        return lambda v, n: iso_time(v, n, naive_is_utc=False)
    if spec.time == "iso_utc":
        return lambda v, n: iso_time(v, n, naive_is_utc=True)
    if spec.time == "epoch_ms":
        return epoch_ms
    if spec.time == "epoch_s":
        return _epoch_s
    return _local_reader(spec.zone, spec.format)


def _checked_reader(field: str, spec: FieldSpec) -> Callable[[Any, str], Any]:
    """How the checked path reads ``field`` (the lenient forms, the error named); a field the mapping marks
    ``required`` is refused when absent, null or empty."""
    read = _reader(field, spec)
    if not spec.required or field in REQUIRED:
        return read

    def required(v: Any, n: str) -> Any:
        if v is None or v == "":
            msg = f"{n} is missing"
            raise DecodeError(msg)
        return read(v, n)

    return required


def _reader(field: str, spec: FieldSpec) -> Callable[[Any, str], Any]:
    if field in REQUIRED and field != "ts":
        return req_str
    if field == "ts":
        return _time_reader(spec)
    if field == "confidence":
        hi = spec.max

        def confidence(v: Any, n: str) -> float | None:
            c = opt_float(v, n, 0.0, hi)
            return None if c is None else (c / hi if hi != 1.0 else c)

        return confidence
    if field == "lat":
        return lambda v, n: opt_float(v, n, -90.0, 90.0)
    if field == "lon":
        return lambda v, n: opt_float(v, n, -180.0, 180.0)
    if field in ("lane", "direction"):
        table = spec.table
        if table:
            return lambda v, n: _looked_up(opt_lane(v, n), table)
        return opt_lane
    if field == "country_raw" and spec.table:
        table = spec.table
        return lambda v, n: _looked_up(opt_str(v, n), table)
    return opt_str


def _looked_up(value: Any, table: dict[str, str]) -> Any:
    """A vendor's code through its table; a code the table does not name is kept as given."""
    return table.get(str(value), value) if value is not None else None


# ---------------------------------------------------------------- JSON


def _fast_type(field: str, spec: FieldSpec) -> Any:
    """The msgspec type of a field on the fast path (its checks done in C while decoding)."""
    if field in ("camera_id", "plate_raw"):
        return Text
    if field == "ts":
        return {"iso": AwareTime, "iso_utc": datetime, "epoch_ms": EpochMs}.get(
            spec.time, Annotated[int, Meta(ge=0, lt=MAX_EPOCH_MS // 1000)]
        )
    if field == "confidence":
        return Annotated[float, Meta(ge=0.0, le=spec.max)] | None
    if field == "lat":
        return Lat | None
    if field == "lon":
        return Lon | None
    if field in ("lane", "direction"):
        return Lane | None
    return str | None


class _Node:
    """One JSON object level of the generated struct: its keys, leaves and children."""

    def __init__(self) -> None:
        self.leaves: dict[str, tuple[str, FieldSpec]] = {}  # key -> canonical field
        self.children: dict[str, _Node] = {}

    def required(self) -> bool:
        return any(f in REQUIRED or s.required for f, s in self.leaves.values()) or any(
            c.required() for c in self.children.values()
        )


def _struct(node: _Node, prefix: str, counter: list[int]) -> tuple[type, dict[str, str]]:
    """The msgspec struct of ``node`` and, per canonical field, its attribute path (``a0.a3``) in it."""
    fields: list[tuple[Any, ...]] = []
    rename: dict[str, str] = {}
    paths: dict[str, str] = {}

    def attr() -> str:
        counter[0] += 1
        return f"a{counter[0]}"

    for key, child in node.children.items():
        name = attr()
        rename[name] = key
        sub, sub_paths = _struct(child, prefix + key + ".", counter)
        if child.required():
            fields.append((name, sub))
        else:
            fields.append((name, sub, msgspec.field(default_factory=sub)))
        paths.update({f: f"{name}.{p}" for f, p in sub_paths.items()})
    for key, (field, spec) in node.leaves.items():
        name = attr()
        rename[name] = key
        t = _fast_type(field, spec)
        if spec.required and field not in REQUIRED:
            t = next(a for a in typing.get_args(t) if a is not type(None))  # the type without None
        fields.append((name, t) if field in REQUIRED or spec.required else (name, t, None))
        paths[field] = name
    # required fields first (msgspec wants those without defaults before the others)
    fields.sort(key=lambda f: len(f) > 2)
    struct = msgspec.defstruct(f"Mapped_{counter[0]}", fields, rename=rename, gc=False, kw_only=True)
    return struct, paths


def _json_vendor(m: Mapping) -> Vendor:
    root = _Node()
    for fname, fspec in m.fields.items():
        node = root
        *up, leaf = fspec.path.split(".")
        clash = False
        for key in up:
            clash = clash or key in node.leaves
            node = node.children.setdefault(key, _Node())
        if clash or leaf in node.children or leaf in node.leaves:
            msg = f"{m.name}: fields.{fname}.path {fspec.path!r} is also another field's"
            raise ConfigError(msg)
        node.leaves[leaf] = (fname, fspec)
    struct, paths = _struct(root, "", [0])
    decoder: Callable[[bytes], Any] = msgspec.json.Decoder(struct).decode
    fields: dict[str, FieldSpec] = {str(k): v for k, v in m.fields.items()}
    names: dict[str, str] = {f: sp.name or sp.path for f, sp in fields.items()}
    readers: dict[str, Callable[[Any, str], Any]] = {f: _checked_reader(f, sp) for f, sp in fields.items()}

    # The fast path's builder: generated source over generated attribute names only (a0, a1, ...), so that a
    # mapped vendor costs what a hand-written one does: one decode in C, one call.
    env: dict[str, Any] = {"ReadFields": ReadFields, "UTC": UTC, "blank_none": blank_none, "VENDOR": m.name}
    args = []
    for field in ORDER:
        got = fields.get(field)
        if got is None:
            args.append("VENDOR" if field == "vendor" else "None")
            continue
        spec = got
        get = f"d.{paths[field]}"
        if field == "ts":
            if spec.time == "iso":
                args.append(f"{get}.astimezone(UTC)")
            elif spec.time == "iso_utc":
                args.append(f"_utc({get})")
                env["_utc"] = _aware_utc
            elif spec.time == "epoch_ms":
                env["_ms"] = _from_ms
                args.append(f"_ms({get})")
            else:
                env["_s"] = _from_s
                args.append(f"_s({get})")
        elif field in ("camera_id", "plate_raw"):
            args.append(get)
        elif field == "confidence":
            args.append(get if spec.max == 1.0 else f"(None if {get} is None else {get} / {spec.max!r})")
        elif field in ("lat", "lon"):
            args.append(get)
        elif field in ("lane", "direction") or (field == "country_raw" and spec.table):
            conv = "blank_none" if field != "country_raw" else "_blank_str"
            env["_blank_str"] = lambda v: v or None
            if spec.table:
                env[f"_table_{field}"] = spec.table
                args.append(f"_looked_up({conv}({get}), _table_{field})")
                env["_looked_up"] = _looked_up
            else:
                args.append(f"{conv}({get})")
        elif field == "vendor":
            args.append(f"({get} or VENDOR)")
        else:
            args.append(f"({get} or None)")
    build = "ReadFields(" + ", ".join(args) + ")"
    plate = f"d.{paths['plate_raw']}"
    ts_path = paths["ts"]
    exec(  # noqa: S102 - the same
        compile(f"def plate_of(d):\n    return {plate}\ndef ts_of(d):\n    return d.{ts_path}\n", "<screen>", "exec"),
        env,
    )
    plate_of, ts_of = env["plate_of"], env["ts_of"]
    aware = m.fields["ts"].time in ("iso", "iso_utc")

    parents: list[list[str]] = []  # the objects a required field sits in, checked first
    for f in [f for f in ORDER if f in fields and (f in REQUIRED or fields[f].required)]:
        steps = fields[f].path.split(".")
        for i in range(1, len(steps)):
            if steps[:i] not in parents:
                parents.append(steps[:i])
    walks = [(f, fields[f].path.split("."), readers[f], names[f]) for f in ORDER if f in fields]

    def checked(payload: bytes) -> ReadFields:
        doc = json_object(payload)
        for parts in parents:
            value: Any = doc
            for i, key in enumerate(parts):
                value = value.get(key)
                if not isinstance(value, dict):
                    where = ".".join(parts[: i + 1])
                    msg = f"{where} is missing" if value is None else f"{where} is not an object"
                    raise DecodeError(msg)
        values: dict[str, Any] = {}
        for field, parts, read, name in walks:
            value = doc
            for i, key in enumerate(parts[:-1]):
                value = value.get(key)
                if value is None:
                    break
                if not isinstance(value, dict):
                    msg = f"{'.'.join(parts[: i + 1])} is not an object"
                    raise DecodeError(msg)
            else:
                values[field] = read(value.get(parts[-1]), name)
        if values.get("vendor") is None:
            values["vendor"] = m.name
        full: dict[str, Any] = {f: values.get(f) for f in ORDER}
        return ReadFields(**full)

    # one generated function, as a hand-written decoder is: decode in C, build the fields; a payload the struct
    # refuses, or a time at the ends of the calendar, goes to the checked path, which words the error
    env |= {"fast": fast, "decoder": decoder, "checked": checked}
    source = (
        "def parse(payload):\n"
        "    d = fast(decoder, payload)\n"
        "    if d is None:\n"
        "        return checked(payload)\n"
        "    try:\n"
        f"        return {build}\n"
        "    except (OverflowError, ValueError):\n"
        "        return checked(payload)\n"
    )
    exec(compile(source, f"<mapping {m.name}>", "exec"), env)  # noqa: S102 - generated from the mapping's own field list
    parse: Callable[[bytes], ReadFields] = env["parse"]

    def screen(payload: bytes) -> str:
        d = screen_struct(decoder, payload)
        if d is None or (aware and not 1 < ts_of(d).year < 9999):
            return ""
        return plate_of(d)

    return Vendor(m.name, parse, screen, lambda p: make_read(parse(p)), lambda p: None)


def _aware_utc(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _from_s(s: int) -> datetime:
    return EPOCH + timedelta(seconds=s)


# ---------------------------------------------------------------- delimited text

_STRIP = re.compile(r"^\s+|\s+$")


def _delimited_vendor(m: Mapping) -> Vendor:
    columns = m.columns or max(s.column for s in m.fields.values()) + 1
    least = m.min_columns or columns
    sep = m.separator
    specs = [(f, s, s.name or f"column {s.column}", _checked_reader(f, s)) for f, s in m.fields.items()]

    def parse(payload: bytes) -> ReadFields:
        parts = text_line(payload).split(sep)
        n = len(parts)
        if n != columns:
            if not least <= n <= columns:
                msg = f"expected {columns} fields separated by {sep!r}, got {n}"
                raise DecodeError(msg)
            parts += [""] * (columns - n)
        values: dict[str, Any] = {"vendor": m.name}
        for field, spec, name, read in specs:
            text = parts[spec.column].strip()
            values[field] = read(text, name)
        full: dict[str, Any] = {f: values.get(f) for f in ORDER}
        return ReadFields(**full)

    def screen(payload: bytes) -> str:
        if len(payload) > MAX_PAYLOAD_BYTES:
            return ""
        try:
            return parse(payload).plate_raw
        except DecodeError:
            return ""

    return Vendor(m.name, parse, screen, lambda p: make_read(parse(p)), lambda p: None)


# ---------------------------------------------------------------- XML, parsed as hostile input

#: The deepest element nesting an XML payload may have (an ANPR event has six or seven levels).
MAX_XML_DEPTH = 32
_PREFIX = re.compile(r"([A-Za-z_][\w.-]*):")


def _xml_path_problems(where: str, path: str, namespaces: dict[str, str]) -> list[str]:
    if not path:
        return [f"{where}: give path (an element path, with /@attribute for an attribute)"]
    steps = re.sub(r"\[[^\]]*\]", "", path)  # the element names, without their predicates
    problems = [
        f"{where}.path {path!r}: prefix {p!r} is not in namespaces"
        for p in dict.fromkeys(_PREFIX.findall(steps))
        if p not in namespaces
    ]
    try:
        from xml.etree.ElementTree import Element

        element, _ = _split_xml(path)
        Element("x").find(element, namespaces)
    except (SyntaxError, KeyError) as exc:
        problems.append(f"{where}.path {path!r}: not an element path ({exc})")
    return problems


def _split_xml(path: str) -> tuple[str, str | None]:
    """An XML field path as (element path, attribute or None): ``a/b/@c`` -> (``a/b``, ``c``)."""
    head, sep, attr = path.rpartition("/@")
    if sep:
        return head or ".", attr
    if path.startswith("@"):
        return ".", path[1:]
    return path, None


def parse_xml(payload: bytes) -> Any:
    """A payload as an XML element tree, parsed as hostile input: size first (16 KiB), no DTD (so no entity
    of any kind: no expansion, no external file or URL), at most ``MAX_XML_DEPTH`` levels (defusedxml over
    the standard library's expat)."""
    import defusedxml.ElementTree as SafeET  # noqa: N812 - the library's documented spelling
    from defusedxml import DefusedXmlException

    check_size(payload)
    try:
        root = SafeET.fromstring(payload, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        msg = f"XML refused: {type(exc).__name__} (no DTD, no entities, no external references)"
        raise DecodeError(msg) from None
    except SyntaxError as exc:  # ElementTree.ParseError
        msg = f"not well-formed XML: {exc}"
        raise DecodeError(msg) from None
    stack = [(root, 1)]
    while stack:
        element, depth = stack.pop()
        if depth > MAX_XML_DEPTH:
            msg = f"XML nested deeper than {MAX_XML_DEPTH} levels"
            raise DecodeError(msg)
        stack.extend((child, depth + 1) for child in element)
    return root


def _xml_vendor(m: Mapping) -> Vendor:
    ns = dict(m.namespaces)
    fields: dict[str, FieldSpec] = {str(k): v for k, v in m.fields.items()}
    found = [
        (f, *_split_xml(fields[f].path), _checked_reader(f, fields[f]), fields[f].name or fields[f].path)
        for f in ORDER
        if f in fields
    ]
    rules = [
        (kind, *_split_xml(r.path), frozenset(r.values), r.path)
        for kind, rs in (("take", m.take), ("skip", m.skip))
        for r in rs
    ]

    def value_at(root: Any, element: str, attr: str | None) -> str | None:
        node = root if element == "." else root.find(element, ns)
        if node is None:
            return None
        text = node.get(attr) if attr is not None else node.text
        return text.strip() if text is not None else None

    def parse(payload: bytes) -> ReadFields:
        root = parse_xml(payload)
        takes = [r for r in rules if r[0] == "take"]
        if takes and not any(value_at(root, e, a) in vals for _, e, a, vals, _ in takes):
            shown = "; ".join(f"{p} = {value_at(root, e, a)!r}" for _, e, a, _, p in takes)
            msg = f"skipped: not an event this vendor's mapping takes ({shown})"
            raise Skipped(msg)
        for kind, e, a, vals, p in rules:
            if kind == "skip" and (v := value_at(root, e, a)) in vals:
                msg = f"skipped: {p} = {v!r}"
                raise Skipped(msg)
        values: dict[str, Any] = {"vendor": m.name}
        for field, element, attr, read, name in found:
            values[field] = read(value_at(root, element, attr), name)
        full: dict[str, Any] = {f: values.get(f) for f in ORDER}
        return ReadFields(**full)

    def screen(payload: bytes) -> str:
        return ""  # XML: the full path decides (the payload is parsed once, there)

    return Vendor(m.name, parse, screen, lambda p: make_read(parse(p)), lambda p: None)


def compile_mapping(m: Mapping) -> Vendor:
    """A mapping's vendor: its decoders, compiled once (at start)."""
    problems = mapping_problems(m)
    if problems:
        raise ConfigError("\n".join(f"{m.name}: {p}" for p in problems))
    if m.format == "xml":
        return _xml_vendor(m)
    return _json_vendor(m) if m.format == "json" else _delimited_vendor(m)


#: The mappings shipped with FEBLAM (the built-in vendors among them, held equal to their decoders by a test).
SHIPPED = Path(__file__).parent / "mappings"


@functools.cache
def shipped(name: str) -> Vendor:
    """A shipped mapping's vendor by name (compiled once a process)."""
    return compile_mapping(load_mapping(SHIPPED / f"{name}.toml"))


@functools.lru_cache(maxsize=256)
def _compiled_file(path: str, mtime_ns: int, size: int) -> tuple[Mapping, Vendor]:
    """A mapping file and its vendor, compiled once while the file is unchanged (the settings are checked, then
    the vendors registered, at each start: one compile serves both)."""
    m = load_mapping(Path(path))
    return m, compile_mapping(m)


def mapping_files(directory: str) -> dict[str, Vendor]:
    """The shipped mappings of vendors without a hand-written decoder (hikvision-isapi, axis-lpv) and every
    mapping of a ``vendors.dir``, compiled, by name; every bad one a line (ConfigError) naming its file. A
    mapping may not take a built-in vendor's name, nor a shipped one's."""
    from feblam.model import VENDOR_NAMES

    vendors: dict[str, Vendor] = {
        f.stem: shipped(f.stem) for f in sorted(SHIPPED.glob("*.toml")) if f.stem not in VENDOR_NAMES
    }
    if not directory:
        return vendors
    folder = Path(directory)
    if not folder.is_dir():
        msg = f"{directory}: not a folder of vendor mappings"
        raise ConfigError(msg)
    problems: list[str] = []
    shipped_names = set(vendors)

    for f in sorted(folder.glob("*.toml")):
        try:
            stat = f.stat()
            m, vendor = _compiled_file(str(f), stat.st_mtime_ns, stat.st_size)
            if m.name != f.stem:
                problems.append(f"{f}: name = {m.name!r}: a mapping is named after its file ({f.stem!r})")
            elif m.name in VENDOR_NAMES or m.name in shipped_names:
                problems.append(f"{f}: name = {m.name!r} is a shipped vendor; give the new vendor a name of its own")
            else:
                vendors[m.name] = vendor
        except ConfigError as exc:
            problems += str(exc).splitlines()
    if problems:
        raise ConfigError("\n".join(problems))
    return vendors


def register(directory: str) -> list[str]:
    """Add the vendors of ``vendors.dir`` to :data:`sources.vendors.VENDORS` (the one registry the flows read);
    their names."""
    from sources.vendors import VENDORS

    vendors = mapping_files(directory)
    VENDORS.update(vendors)
    return sorted(vendors)
