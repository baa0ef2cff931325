"""The lazy public API of a package: its ``__init__`` names what it offers without importing it.

Each package's ``__all__`` is its public API; importing the package costs nothing, and
each name loads its module on first use.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any


def lazy_api(package: str, where: Mapping[str, str]) -> tuple[list[str], Callable[[str], Any]]:
    """``__all__`` and a module ``__getattr__`` that loads each name's module on first use (PEP 562)."""

    def getattr_(name: str) -> Any:
        if name not in where:
            msg = f"module {package!r} has no attribute {name!r}"
            raise AttributeError(msg)
        return getattr(import_module(where[name]), name)

    return sorted(where), getattr_
