"""Vendor decoders, one module per camera vendor, listed in :data:`PARSERS`.

Each module has ``decode(payload: bytes) -> Read`` (raising
:class:`~feblam.errors.DecodeError`) and ``parse(payload) -> ReadFields``, the
same decoded fields by name without building the frozen dataclass, for the hot path, and
``screen(payload) -> str``, the raw plate of a payload ``parse`` certainly accepts (``""``: parse decides).
"""

from __future__ import annotations

from collections.abc import Callable

from feblam.errors import DecodeError
from feblam.model import Read
from sources.vendors import canonical, vendor_a, vendor_b, vendor_c
from sources.vendors._fields import ReadFields, make_read

PARSERS: dict[str, Callable[[bytes], ReadFields]] = {
    canonical.VENDOR: canonical.parse,
    vendor_a.VENDOR: vendor_a.parse,
    vendor_b.VENDOR: vendor_b.parse,
    vendor_c.VENDOR: vendor_c.parse,
}
DECODERS: dict[str, Callable[[bytes], Read]] = {
    canonical.VENDOR: canonical.decode,
    vendor_a.VENDOR: vendor_a.decode,
    vendor_b.VENDOR: vendor_b.decode,
    vendor_c.VENDOR: vendor_c.decode,
}
#: ``screen(payload)``: the raw plate of a payload the vendor's ``parse`` certainly accepts, without
#: building its fields (``""``: only ``parse`` can tell; a plate ``parse`` accepts is never empty). The hot path screens every read and parses
#: only those whose plate the index may match, and those the screen cannot vouch for.
SCREENS: dict[str, Callable[[bytes], str]] = {
    canonical.VENDOR: canonical.screen,
    vendor_a.VENDOR: vendor_a.screen,
    vendor_b.VENDOR: vendor_b.screen,
    vendor_c.VENDOR: vendor_c.screen,
}
VENDORS: tuple[str, ...] = tuple(PARSERS)


def decode(vendor: str, payload: bytes) -> Read:
    """Decode one payload of ``vendor``; unknown vendors are a :class:`DecodeError`."""
    try:
        decoder = DECODERS[vendor]
    except KeyError:
        msg = f"unknown vendor {vendor!r} (known: {', '.join(VENDORS)})"
        raise DecodeError(msg) from None
    return decoder(payload)


__all__ = ["DECODERS", "PARSERS", "SCREENS", "VENDORS", "ReadFields", "decode", "make_read"]
