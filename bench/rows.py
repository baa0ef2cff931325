"""The names of the benchmark rows, by family (DESIGN section 9): data only, so that the CLI lists them
in ``feblam bench --help`` without importing the suite."""

from __future__ import annotations

MEMORY_ROWS = (
    "limit-memory",
    "ceiling-memory",
    "feblam-memory",
    "naive-memory",
    "feblam-memory-dedup",
    "feblam-memory-clones",
)
KAFKA_ROWS = (
    "ceiling-kafka",
    "feblam-kafka",
    "naive-kafka",
    "feblam-kafka-latency",
    "change-to-hit",
    "change-to-hit-retro-off",
    "retro-scan",
    "retro-stall",
)
INDEX_ROWS = ("index-build", "index-swap", "index-delta", "index-publish")
CLUSTER_ROWS = ("feblam-memory-2proc",)
GATEWAY_ROWS = ("gateway", "gateway-api", "gateway-webhook")
#: A built-in vendor's decoder and its shipped mapping, on the same payloads (bench/mapping_rows.py).
MAPPING_ROWS = ("mappings",)
#: Today's OCR-equivalence rule and the format-aware one on a generated set (bench/ocr_quality.py).
QUALITY_ROWS = ("ocr-quality",)
ALL_ROWS = MEMORY_ROWS + KAFKA_ROWS + CLUSTER_ROWS + INDEX_ROWS + GATEWAY_ROWS + MAPPING_ROWS + QUALITY_ROWS
