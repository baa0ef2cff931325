"""The Hit Gateway's settings: ``[gateway]`` and ``[[desks]]`` as typed in :mod:`feblam.config`, and what the flow derives.

The structs stay in :mod:`feblam.config`, beside every other section of the one
configuration file (one schema, one ``config check``); this module is where a
reader of ``gateway/`` finds them, with :class:`Desks`, the desks' rules,
escalation targets and deadlines as the flow uses them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from feblam.config import OUTCOMES, DeskSettings, GatewaySettings, UserSettings
from feblam.model import Match
from feblam.serde import match_from_dict
from sinks.routing import rule_matches

__all__ = ["OUTCOMES", "DeskSettings", "Desks", "GatewaySettings", "UserSettings"]


class Desks:
    """The desks' rules, escalation targets and deadlines."""

    def __init__(self, desks: Sequence[DeskSettings], gateway: GatewaySettings) -> None:
        self.desks = tuple(desks)
        self.names = tuple(d.name for d in desks)
        self.escalate_to: Mapping[str, str] = {d.name: d.escalate_to for d in desks if d.escalate_to}
        self.rules = {d.name: d.rule for d in desks}
        self.covert = {d.name: d.sees_covert for d in desks}
        #: Who may act for each desk: its users and its API clients (an action of anyone else is forged).
        self.users: Mapping[str, frozenset[str]] = {
            d.name: frozenset(u.name for u in d.users) | frozenset(c.name for c in d.clients) for d in desks
        }
        self.after = {int(p): timedelta(seconds=s) for p, s in gateway.escalate_after_seconds.items()}
        self.keep_closed = timedelta(minutes=gateway.keep_closed_minutes)
        self.retention = timedelta(hours=gateway.case_retention_hours)
        self.max_age = timedelta(minutes=gateway.max_hit_age_minutes)
        self.reopen_within = timedelta(minutes=gateway.reopen_within_minutes)
        self.realert_after = timedelta(minutes=gateway.realert_after_minutes)
        self.alert_max_priority = gateway.alert_max_priority
        # regions by camera prefix, the longest first: the configured ones, else the desks' camera prefixes
        prefixes = dict(gateway.regions) or {p: p for d in desks for p in d.rule.camera_prefixes or ()}
        self.regions = sorted(prefixes.items(), key=lambda kv: -len(kv[0]))

    def region(self, camera: str) -> str | None:
        """The region of a camera (its longest prefix in ``[gateway] regions`` or the desks' rules), or None."""
        return next((name for prefix, name in self.regions if camera.startswith(prefix)), None)

    def alerts(self, priority: int) -> bool:
        """Whether a case of this priority sounds and flashes on the desk's page (``alert_max_priority``)."""
        return int(priority) <= self.alert_max_priority

    def route(self, hit: dict[str, Any]) -> list[str]:
        """The desks that may see one of the hit's matches (:meth:`visible`) and take its kind (live or retro);
        a malformed hit raises KeyError, TypeError or ValueError."""
        matches, camera = _matches_of(hit)
        retro = bool(hit.get("retro", False))
        return [
            d.name
            for d in self.desks
            if (d.rule.retro is None or d.rule.retro == retro) and self._visible(matches, camera, d.name)
        ]

    def visible(self, hit: dict[str, Any], desk: str, via: str | None = None) -> tuple[int, ...]:
        """The positions of the matches ``desk`` may see (need to know): those its rule selects (priority,
        category, action, list, owner, camera) and, when covert, only at a desk allowed covert matches. A case
        that came by escalation from ``via`` shows, when the desk's own rule selects none, what ``via`` saw."""
        matches, camera = _matches_of(hit)
        mine = self._visible(matches, camera, desk)
        if mine or via is None:
            return mine
        return tuple(i for i in self._visible(matches, camera, via) if self._may_see(matches[i], desk))

    def _visible(self, matches: Sequence[Match], camera: str, desk: str) -> tuple[int, ...]:
        rule = self.rules.get(desk)
        if rule is None:
            return ()
        return tuple(i for i, m in enumerate(matches) if self._may_see(m, desk) and rule_matches(rule, [m], camera))

    def _may_see(self, match: Match, desk: str) -> bool:
        """A covert (observe) match only at a desk allowed covert matches."""
        return match.action != "observe" or self.covert.get(desk, False)

    def deadline(self, priority: int, desk: str, now: datetime) -> datetime | None:
        """When a new case of this priority at this desk escalates (None: its priority never does, or nowhere to go)."""
        after = self.after.get(int(priority))
        return now + after if after is not None and desk in self.escalate_to else None


def _matches_of(hit: dict[str, Any]) -> tuple[list[Match], str]:
    """A hit's matches and camera, as routing reads them."""
    return [match_from_dict(m) for m in hit["matches"]], str(hit["read"]["camera_id"])
