"""A batch of raw plates against the index at once: which reads need the full probe.

The hot path's question for 99 % of reads is "can any entry match this plate?";
answering it one read at a time costs a regular expression, a base-36 parse and
a Bloom probe in Python. Here a whole batch is answered with numpy: the plates'
bytes as one matrix, each plate's fuzzy key code packed column by column
(non-alphanumeric characters skipped, lower case folded: :func:`plate_key` for
ASCII plates), and each code checked in the index's batch filter
(:mod:`matchers.wordfilter`: no false negative, about 0.05 % false positives,
which the full probe then settles).

A plate is sent to the full path when the screen could not vouch for its
payload (an empty plate), when it is not ASCII, when its key is empty or longer than
``PACKED_MAX_LEN`` (those take the per-read functions, which handle them), when
its fuzzy code may be in the index, and — when the index has pattern entries —
when a pattern matches its key (one RE2 pass over the batch). Nothing the index could match is ever left out.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from matchers.keycode import PACKED_MAX_LEN
from matchers.normalize import OCR_FROM, OCR_TO

if TYPE_CHECKING:
    from matchers.index import Index

#: Plates this long or longer (in characters, separators included) take the per-read path.
MAX_WIDTH = 24
_NO = 255
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
#: byte -> base-36 digit of its fuzzy class (letters of either case), or _NO for a character a key drops.
_FUZZY_DIGIT = np.full(256, _NO, dtype=np.uint8)
#: byte -> base-36 digit of the character itself (letters of either case), or _NO.
_EXACT_DIGIT = np.full(256, _NO, dtype=np.uint8)
for _i, _ch in enumerate(_ALPHABET):
    _rep = OCR_TO[OCR_FROM.index(_ch)] if _ch in OCR_FROM else _ch
    _FUZZY_DIGIT[ord(_ch)] = _FUZZY_DIGIT[ord(_ch.lower())] = _ALPHABET.index(_rep)
    _EXACT_DIGIT[ord(_ch)] = _EXACT_DIGIT[ord(_ch.lower())] = _i
_POW36 = np.array([36**i for i in range(PACKED_MAX_LEN + 1)], dtype=np.int64)


def fuzzy_codes(plates: Sequence[str]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """The fuzzy key code of each ASCII plate (``key_code(fuzzy_key(plate_key(p)))``), and which plates
    the codes do not cover (not ASCII, no key, a key over ``PACKED_MAX_LEN``, a plate over ``MAX_WIDTH``)."""
    (codes,), other = _codes(plates, (_FUZZY_DIGIT,))
    return codes, other


def exact_codes(plates: Sequence[str]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """The key code of each ASCII plate (``key_code(plate_key(p))``), and which plates the codes do not cover
    (as :func:`fuzzy_codes`)."""
    (codes,), other = _codes(plates, (_EXACT_DIGIT,))
    return codes, other


def fuzzy_and_exact_codes(
    plates: Sequence[str],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """:func:`fuzzy_codes` and :func:`exact_codes` from one pass over the characters (the clone check needs both)."""
    (fuzzy, exact), other = _codes(plates, (_FUZZY_DIGIT, _EXACT_DIGIT))
    return fuzzy, exact, other


def _codes(
    plates: Sequence[str], tables: tuple[npt.NDArray[np.uint8], ...]
) -> tuple[list[npt.NDArray[np.int64]], npt.NDArray[np.bool_]]:
    n = len(plates)
    if n == 0:
        return [np.zeros(0, dtype=np.int64) for _ in tables], np.zeros(0, dtype=bool)
    joined = "\x00".join(plates)
    if joined.isascii():
        other = np.zeros(n, dtype=bool)
    else:  # rare: the non-ASCII plates are blanked and left to the per-read path
        other = np.fromiter((not p.isascii() for p in plates), dtype=bool, count=n)
        joined = "\x00".join("" if o else p for p, o in zip(plates, other.tolist(), strict=True))
    data = np.frombuffer(joined.encode("ascii"), dtype=np.uint8)
    ends = np.flatnonzero(data == 0)
    if ends.shape[0] == n - 1:  # the separators: where each plate ends
        starts = np.empty(n, dtype=np.int64)
        starts[0] = 0
        starts[1:] = ends + 1
        lengths = np.empty(n, dtype=np.int64)
        lengths[:-1] = ends - starts[:-1]
        lengths[-1] = data.shape[0] - starts[-1]
    else:  # a plate holds the separator itself: count its length the slow way
        lengths = np.fromiter(
            (0 if o else len(p) for p, o in zip(plates, other.tolist(), strict=True)), dtype=np.int64, count=n
        )
        starts = np.zeros(n, dtype=np.int64)
        np.cumsum(lengths[:-1] + 1, out=starts[1:])
    other |= lengths > MAX_WIDTH
    lengths = np.minimum(lengths, MAX_WIDTH)
    width = int(lengths.max())
    # Every plate's characters as one column of a matrix, one row per position (past a plate's end: the
    # separator, which no key keeps), as fuzzy digits; rows, so that each step is a run over contiguous memory.
    cols = np.arange(width, dtype=np.int64)[:, None]
    at = np.where(cols < lengths, starts + cols, data.shape[0])
    chars = np.take(np.append(data, np.uint8(0)), at)
    out = []
    for table in tables:  # both tables drop the same characters: the counts agree
        digits = np.take(table, chars)
        keep = digits != _NO
        count = keep.sum(axis=0)
        acc = np.zeros(n, dtype=np.int64)
        wide = digits.astype(np.int64)
        for row in range(width):  # Horner, skipping what a key drops
            acc = np.where(keep[row], acc * 36 + wide[row], acc)
        out.append(_POW36[np.minimum(count, PACKED_MAX_LEN)] + acc)
    other |= (count == 0) | (count > PACKED_MAX_LEN)
    return out, other


def needs_probe(
    index: Index, plates: Sequence[str], made: tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]] | None = None
) -> list[int]:
    """Positions of the plates the full path must see (see the module's docstring), in order; ``codes``: the
    plates' :func:`fuzzy_codes` when ``made`` already.

    An empty plate is one the screen could not vouch for (a plate ``parse`` accepts is never empty).
    """
    codes, other = made if made is not None else fuzzy_codes(plates)
    maybe = other | index.has_fuzzy_codes(codes)
    if index.has_pattern_entries:
        maybe |= ~other & patterns_may_match(index.pattern_sources(), plates)
    return np.flatnonzero(maybe).tolist()


def patterns_may_match(sources: Sequence[str], plates: Sequence[str]) -> npt.NDArray[np.bool_]:
    """For each (ASCII) plate, whether its key matches one of the patterns whole: one RE2 pass over the
    batch's keys (Arrow), every pattern in one alternation. Should RE2 refuse the expression (a very
    large pattern list), each key is checked against each pattern in Python instead."""
    import pyarrow as pa
    import pyarrow.compute as pc

    keys = pc.replace_substring_regex(
        pc.ascii_upper(pa.array(plates, type=pa.string())), pattern="[^A-Z0-9]+", replacement=""
    )
    try:
        found = pc.match_substring_regex(keys, pattern="^(?:" + "|".join(sources) + ")$")
        return np.asarray(found.to_numpy(zero_copy_only=False), dtype=bool)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        regexes = [re.compile(s) for s in sources]
        return np.array([any(r.fullmatch(k) for r in regexes) for k in keys.to_pylist()], dtype=bool)
