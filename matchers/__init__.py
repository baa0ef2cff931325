"""Plate keys, hotlist snapshots and the index: build, store, query, keep live. No Kafka, no Bytewax."""

from __future__ import annotations

from feblam.lazy import lazy_api

__all__, __getattr__ = lazy_api(
    __name__,
    {
        "plate_key": "matchers.normalize",
        "fuzzy_key": "matchers.normalize",
        "pattern_key": "matchers.normalize",
        "country_code": "matchers.normalize",
        "OCR_CLASSES": "matchers.normalize",
        "list_dirs": "matchers.hotdir",
        "list_files": "matchers.hotdir",
        "source_manifest": "matchers.hotdir",
        "hotlists_fingerprint": "matchers.hotdir",
        "load_hotlists": "matchers.snapshot",
        "load_list": "matchers.snapshot",
        "ListSnapshot": "matchers.snapshot",
        "SCHEMA": "matchers.snapshot",
        "build_index": "matchers.build",
        "build_layer": "matchers.build",
        "load_index": "matchers.build",
        "load_layer": "matchers.build",
        "save_index": "matchers.store",
        "open_index": "matchers.store",
        "save_layer": "matchers.store",
        "open_version": "matchers.store",
        "build_shared": "matchers.builder",
        "HotlistIndex": "matchers.index",
        "LayeredIndex": "matchers.layers",
        "ChangedIndex": "matchers.layers",
        "IndexVersion": "matchers.index",
        "Index": "matchers.index",
        "IndexHolder": "matchers.index",
        "open_live_index": "matchers.refresh",
        "LiveIndex": "matchers.refresh",
        "HotlistWatcher": "matchers.refresh",
        "allow_shrink": "matchers.shrink",
    },
)
