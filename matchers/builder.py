"""The builder process: turns the hotlist directory into versions in a cache folder.

``build_shared`` builds a version **in a separate process** (``python -m
matchers.builder``: the CPU-heavy part never competes with the flow for the
GIL) into a cache directory named by the snapshot contents and the index
settings, so the processes of one machine build each version once. When the
snapshots only gained delta files since a full version in the cache, the child
writes a **layer** over that version instead (the deltas' upserts and the base
rows they drop), which a job opens over the base it already maps. The files it
writes are :mod:`matchers.store`'s format.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import orjson
import pyarrow as pa

from feblam.config import HotlistSettings
from feblam.errors import IndexFormatError, SnapshotError
from matchers.hotdir import SNAPSHOT_NAME, Manifest, source_manifest
from matchers.store import DONE, FORMAT, open_index, read_meta, save_index, save_layer, write_atomic


def _build_params(settings: HotlistSettings) -> dict[str, Any]:
    """What a version's files depend on besides the snapshots."""
    return {
        "format": FORMAT,
        "n_shards": settings.shards,
        "backend": settings.bloom_backend,
        "fp_rate": settings.bloom_fp_rate,
    }


def version_key(settings: HotlistSettings, manifest: Manifest | None = None) -> str:
    """The cache key of a built version: the contents of every snapshot file and list.toml,
    the on-disk format and the index settings (shards, Bloom backend and rate)."""
    h = hashlib.blake2b(digest_size=12)
    h.update(orjson.dumps(_build_params(settings), option=orjson.OPT_SORT_KEYS))
    h.update(_manifest_bytes(source_manifest(settings.dir) if manifest is None else manifest))
    return h.hexdigest()


def _manifest_bytes(manifest: Manifest) -> bytes:
    """One form of a manifest, whether it was made here or came back from JSON (lists, not tuples)."""
    return orjson.dumps(manifest, option=orjson.OPT_SORT_KEYS)


def new_deltas(old: Manifest, new: Manifest, max_fraction: float) -> dict[str, list[str]] | None:
    """The delta files ``new`` has beyond ``old``, per list, if that is all that changed (else None).

    None as well when the new deltas' bytes exceed ``max_fraction`` of the old snapshot files.
    """
    if old.keys() != new.keys() or old == new:
        return None
    added: dict[str, list[str]] = {}
    old_bytes = new_bytes = 0
    for list_id, rows in new.items():
        before = old[list_id]
        if [r for r in rows if r[0] == "list.toml"] != [r for r in before if r[0] == "list.toml"]:
            return None
        snaps_before = sorted((r for r in before if r[0] != "list.toml"), key=_seq)
        snaps = sorted((r for r in rows if r[0] != "list.toml"), key=_seq)
        if snaps[: len(snaps_before)] != snaps_before:
            return None
        extra = snaps[len(snaps_before) :]
        if any(SNAPSHOT_NAME.match(r[0])["kind"] != "delta" for r in extra):  # type: ignore[index]
            return None
        if extra and snaps_before and _seq(extra[0]) <= _seq(snaps_before[-1]):
            return None
        if extra:
            added[list_id] = [r[0] for r in extra]
        old_bytes += sum(r[2] for r in snaps_before)
        new_bytes += sum(r[2] for r in extra)
    if new_bytes > max_fraction * old_bytes:
        return None
    return added


def _seq(row: tuple[str, str, int]) -> tuple[int, str]:
    m = SNAPSHOT_NAME.match(row[0])
    return (int(m["seq"]) if m else -1, row[0])


def _layer_base(cache: Path, manifest: Manifest, settings: HotlistSettings) -> tuple[Path, dict[str, list[str]]] | None:
    """The newest full version in ``cache``, built with these settings, that the current files only add deltas to."""
    if settings.layer_max_fraction <= 0:
        return None
    params = _build_params(settings)
    fulls = sorted(
        (p for p in cache.glob("index-*") if (p / DONE).exists() and (p / "manifest.json").exists()),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for path in fulls:
        try:
            meta = read_meta(path)
            old = {k: [tuple(r) for r in v] for k, v in orjson.loads((path / "manifest.json").read_bytes()).items()}
        except (OSError, IndexFormatError, orjson.JSONDecodeError):
            continue
        if meta.get("kind", "full") != "full" or any(
            meta.get(k) != params[k] for k in ("n_shards", "backend", "fp_rate")
        ):
            continue
        added = new_deltas(old, manifest, settings.layer_max_fraction)  # type: ignore[arg-type]
        if added is not None:
            return path, added
    return None


def build_shared(settings: HotlistSettings, cache_dir: str | Path, timeout: float = 3600.0) -> Path:
    """The directory of the built version for the current snapshots, building it in a child process if needed.

    When the snapshots only gained delta files since a full version in the cache,
    the child writes a small layer over it instead of a full version. Raises
    :class:`SnapshotError` with the child's message when validation fails.
    """
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    manifest = source_manifest(settings.dir)
    key = version_key(settings, manifest)
    target = cache / f"index-{key}"
    if (target / DONE).exists():
        return target
    with (cache / f".lock-{key}").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder per machine; the others wait, then map
        try:
            if (target / DONE).exists():
                return target
            base = _layer_base(cache, manifest, settings)
            job = {
                "settings": msgspec.to_builtins(settings),
                "out": str(target),
                "manifest": manifest,
                "base": str(base[0]) if base else None,
                "new_files": base[1] if base else None,
            }
            args = [sys.executable, "-m", "matchers.builder", orjson.dumps(job).decode()]
            try:
                env = {**os.environ, **BUILDER_ENV}
                proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False, env=env)  # noqa: S603
            except subprocess.TimeoutExpired:
                msg = f"index build of {settings.dir} took longer than {timeout} s"
                raise SnapshotError(msg) from None
            if proc.returncode == 0 and base is None:
                write_atomic(target / "manifest.json", orjson.dumps(manifest))
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    if proc.returncode != 0:
        lines = [x for x in proc.stderr.strip().splitlines() if x.startswith("feblam-index-error: ")]
        detail = lines[-1].removeprefix("feblam-index-error: ") if lines else proc.stderr.strip()[-2000:]
        raise SnapshotError(detail)
    _prune(cache, keep=target)
    return target


#: The builder's environment. No transparent huge pages: their compaction stalls the whole
#: machine. glibc keeps freed memory for reuse instead of returning it (no mmap for large
#: blocks, no trimming): at 10M entries the builder then touches 1.0 million fresh pages
#: instead of 2.25 million (peak 3.6 GB instead of 3.0), builds faster, and the hypervisor
#: steals about half as much time from the job's cores meanwhile (bench/RESULTS.md).
BUILDER_ENV = {
    "NUMPY_MADVISE_HUGEPAGE": "0",
    "ARROW_DEFAULT_MEMORY_POOL": "system",
    "MALLOC_MMAP_MAX_": "0",
    "MALLOC_TRIM_THRESHOLD_": str(64 << 30),
    "MALLOC_TOP_PAD_": str(256 << 20),
}


def _main(argv: list[str]) -> int:
    """``python -m matchers.builder JOB_JSON``: the builder process.

    The job names the settings, the output folder and the parent's manifest (whose
    hashes spare re-reading the files); with a base, the new delta files are
    written as a layer over that full version.
    """
    from matchers.build import load_index, load_layer
    from matchers.hotdir import remember_hashes

    # A background job: lower priority and one Arrow thread, so the flow keeps its cores.
    os.nice(19)
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cpus) > 1:  # keep to one core, so the job keeps the others to itself
        os.sched_setaffinity(0, {cpus[-1]})
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    job = orjson.loads(argv[0])
    settings = msgspec.convert(job["settings"], HotlistSettings)
    try:
        remember_hashes(settings.dir, job["manifest"])
        if job["base"]:
            base = open_index(job["base"], with_blooms=False)
            layer = load_layer(base, settings.dir, job["new_files"], with_blooms=base.backend == "rbloom")
            save_layer(layer, job["out"], job["base"])
        else:
            # rbloom filters are saved with the version; pybloom ones are rebuilt where they are used
            save_index(load_index(settings, with_blooms=settings.bloom_backend == "rbloom"), job["out"])
        # The folder is named by the files the parent saw: if they changed meanwhile, it must not stay.
        if _manifest_bytes(source_manifest(settings.dir)) != _manifest_bytes(job["manifest"]):
            shutil.rmtree(job["out"], ignore_errors=True)
            msg = f"{settings.dir}: snapshot files changed during the build; the next poll builds again"
            raise SnapshotError(msg)
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which keeps the live index
        print(f"feblam-index-error: {exc}", file=sys.stderr)
        return 1
    return 0


def _prune(cache: Path, keep: Path, retain: int = 3) -> None:
    """Keep the newest few versions (a process may still map an older one) and the bases of kept layers."""
    versions = sorted((p for p in cache.glob("index-*") if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True)
    kept = [*versions[:retain], keep]
    needed = {p.name for p in kept}
    for p in kept:
        try:
            needed.add(orjson.loads((p / "meta.json").read_bytes()).get("base") or "")
        except (OSError, orjson.JSONDecodeError):
            continue
    for old in versions[retain:]:
        if old.name not in needed:
            shutil.rmtree(old, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
