"""Routing rules: which hit sinks a hit goes to (DESIGN sections 6 and 8)."""

from __future__ import annotations

from collections.abc import Sequence

from feblam.config import Rule, SinkSettings
from feblam.model import Match


def rule_matches(rule: Rule, matches: Sequence[Match], camera_id: str) -> bool:
    """True when the camera fits and one match meets every match-level condition."""
    if rule.camera_prefixes and not camera_id.startswith(rule.camera_prefixes):
        return False
    for m in matches:
        if m.priority > rule.max_priority:
            continue
        if rule.categories and m.category not in rule.categories:
            continue
        if rule.actions and m.action not in rule.actions:
            continue
        if rule.lists and m.list_id not in rule.lists:
            continue
        if rule.owners and m.owner not in rule.owners:
            continue
        return True
    return False


class Router:
    """The sinks' rules: which sinks a hit goes to."""

    def __init__(self, sinks: Sequence[SinkSettings]) -> None:
        self.sinks = tuple(sinks)

    def routes(self, matches: Sequence[Match], camera_id: str, retro: bool = False) -> tuple[str, ...]:
        """The names of the sinks whose rule takes a hit with these matches from this camera."""
        return tuple(
            s.name
            for s in self.sinks
            if (s.rule.retro is None or s.rule.retro == retro) and rule_matches(s.rule, matches, camera_id)
        )
