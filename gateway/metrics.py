"""The Hit Gateway's metrics (``feblam_gateway_*``, docs/metrics.md), in the gateway's registry (feblam.metrics.GATEWAY_REGISTRY).

Only ``feblam gateway`` imports this module, so the job (``feblam run``) never
exports these series, not even at zero.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from feblam.metrics import BUCKETS, GATEWAY_REGISTRY

HITS = Counter(
    "feblam_gateway_hits",
    "Hits the gateway took from the hits topics, by result (routed, joined a case, unrouted, repeated, too_old)",
    ["result"],
    registry=GATEWAY_REGISTRY,
)
EVENTS = Counter(
    "feblam_gateway_events",
    "Hit events (state changes) written, by desk and state",
    ["desk", "state"],
    registry=GATEWAY_REGISTRY,
)
CASES = Gauge(
    "feblam_gateway_cases", "Hits on each desk's board, by state", ["desk", "state"], registry=GATEWAY_REGISTRY
)
HIT_TO_BOARD = Histogram(
    "feblam_gateway_hit_to_board_seconds",
    "Hit emitted to on a desk's board",
    buckets=BUCKETS,
    registry=GATEWAY_REGISTRY,
)
REFUSED = Counter(
    "feblam_gateway_refused",
    "Messages on the gateway's topics it could not use (dead-lettered or refused actions)",
    ["topic_kind", "reason"],
    registry=GATEWAY_REGISTRY,
)
LOGINS = Counter(
    "feblam_gateway_logins", "Console logins, by result (ok, failed, blocked)", ["result"], registry=GATEWAY_REGISTRY
)
PAGES = Gauge("feblam_gateway_pages", "Console pages connected to a board", registry=GATEWAY_REGISTRY)
FLAGGED = Counter(
    "feblam_gateway_entries_flagged",
    "Hotlist entries flagged for their owner (closed as false_read flag_false_reads times within flag_window_days)",
    ["list_id"],
    registry=GATEWAY_REGISTRY,
)
API = Counter(
    "feblam_gateway_api_requests",
    "Machine-API requests, by desk and what they did (cases, stream, acknowledge, close; unauthorised: no desk)",
    ["desk", "request"],
    registry=GATEWAY_REGISTRY,
)
STREAMS = Gauge("feblam_gateway_api_streams", "API clients following a desk's feed", registry=GATEWAY_REGISTRY)
WEBHOOKS = Counter(
    "feblam_gateway_webhook_deliveries",
    "Webhook deliveries, by desk and result (delivered, failed: one attempt, deadlettered: kept for replay)",
    ["desk", "result"],
    registry=GATEWAY_REGISTRY,
)
WEBHOOK_LAG = Gauge(
    "feblam_gateway_webhook_behind",
    "Changes of a desk's feed its webhook has not delivered yet",
    ["desk"],
    registry=GATEWAY_REGISTRY,
)
WEBHOOK_SECONDS = Histogram(
    "feblam_gateway_webhook_delivery_seconds",
    "A change appended to its desk's feed to delivered by its webhook (retries included)",
    buckets=BUCKETS,
    registry=GATEWAY_REGISTRY,
)
ACTIVE = Gauge(
    "feblam_gateway_active",
    "1: this gateway is the active one; 0: a standby waiting for the recovery lock",
    registry=GATEWAY_REGISTRY,
)
