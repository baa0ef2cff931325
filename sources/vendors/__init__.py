"""The camera vendors: one module a vendor, one :class:`Vendor` record each, in one registry :data:`VENDORS`.

A vendor module has ``decode(payload) -> Read`` (raising
:class:`~feblam.errors.DecodeError`), ``parse(payload) -> ReadFields`` (the same
fields by name without building the frozen dataclass, for the hot path),
``screen(payload) -> str`` (the raw plate of a payload ``parse`` certainly
accepts, without building its fields; ``""``: only ``parse`` can tell), the same
over a whole batch where the vendor has it (``SCREEN``, one compiled call) and
``plate_at(payload) -> str | None`` (where the plate sits in the raw payload:
its text when that is certain without decoding, for the retro-scan's
pre-check; None: decode to know).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType

from feblam.errors import DecodeError
from feblam.model import Read
from sources.vendors import canonical, vendor_a, vendor_b, vendor_c
from sources.vendors._fields import ReadFields, make_read
from sources.vendors.sightings import Sightings


@dataclass(frozen=True, slots=True)
class Vendor:
    """Everything FEBLAM knows of one camera vendor's payloads."""

    name: str
    #: Bytes -> the read's fields by name (hot path); raises DecodeError.
    parse: Callable[[bytes], ReadFields]
    #: Bytes -> the raw plate of a payload ``parse`` certainly accepts; ``""``: only ``parse`` can tell.
    screen: Callable[[bytes], str]
    #: Bytes -> the canonical :class:`~feblam.model.Read`; raises DecodeError.
    decode: Callable[[bytes], Read]
    #: Bytes -> the plate's text where it is certain without decoding; None: decode to know.
    plate_at: Callable[[bytes], str | None]
    #: A batch -> the sightings of the payloads it vouches for (the clone check); None: ``parse`` one by one.
    sightings: Callable[[Sequence[bytes]], Sightings] | None = None
    #: A batch -> ``screen`` of each payload, in one call; None: ``screen`` one by one.
    screens: Callable[[Sequence[bytes]], list[str]] | None = None

    def screen_batch(self, payloads: Sequence[bytes]) -> list[str]:
        """``screen`` of each payload: the batch screen where the vendor has one."""
        if self.screens is not None:
            return self.screens(payloads)
        return list(map(self.screen, payloads))

    @classmethod
    def of(cls, module: ModuleType) -> Vendor:
        spec = getattr(module, "SIGHTING", None)
        return cls(
            module.VENDOR,
            module.parse,
            module.screen,
            module.decode,
            module.plate_at,
            spec.sightings if spec is not None else getattr(module, "sightings", None),
            getattr(module, "SCREEN", None),
        )


VENDORS: dict[str, Vendor] = {v.name: v for v in map(Vendor.of, (canonical, vendor_a, vendor_b, vendor_c))}


def decode(vendor: str, payload: bytes) -> Read:
    """Decode one payload of ``vendor``; unknown vendors are a :class:`DecodeError`."""
    try:
        decoder = VENDORS[vendor].decode
    except KeyError:
        msg = f"unknown vendor {vendor!r} (known: {', '.join(VENDORS)})"
        raise DecodeError(msg) from None
    return decoder(payload)


__all__ = ["VENDORS", "ReadFields", "Vendor", "decode", "make_read"]
