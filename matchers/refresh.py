"""The live index: the version a job matches against, and the thread that swaps new ones in.

:func:`open_live_index` is the one way run, demo, replay and the benchmark get
their index: it builds (or finds in the cache) and maps the current version,
and with ``watch`` starts a :class:`HotlistWatcher` that polls the directory; a
changed directory (file names, sizes, modification times, shrink permits) is
built and the new version swapped in at once — readers pick it up at their
next batch. A snapshot that fails validation, or that the shrink guard holds
back, is logged and the live index stays.

The life cycle, one verb a module: build (:mod:`matchers.build`), save and
open (:mod:`matchers.store`), the builder process (:mod:`matchers.builder`),
query (:mod:`matchers.index`), watch and swap (here).
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from feblam import metrics
from feblam.config import HotlistSettings, replace
from feblam.errors import FeblamError
from feblam.logs import get_logger
from matchers.build import load_index
from matchers.hotdir import hotlists_fingerprint, list_dirs
from matchers.index import Index, IndexHolder
from matchers.shrink import latest_fulls, permits, shrinks, take_permits

log = get_logger(__name__)
SHM_MIN_FREE = 4 << 30  # bytes: room for a few national-size versions


def cache_dir(settings: HotlistSettings) -> Path:
    """Where built versions live: ``cache_dir``, else a private folder in ``/dev/shm``.

    A RAM-backed folder means writing a version does no disk I/O, and the mapped
    pages of the live version cannot be evicted and faulted back in during a read.
    Without ``/dev/shm``, or with less than :data:`SHM_MIN_FREE` free there (containers
    often give it 64 MB), the system temp dir is used instead.
    """
    if settings.cache_dir:
        return Path(settings.cache_dir)
    shm = Path("/dev/shm")  # noqa: S108 - a private folder, checked below
    usable = shm.is_dir() and os.access(shm, os.W_OK) and shutil.disk_usage(shm).free >= SHM_MIN_FREE
    return _private_dir((shm if usable else Path(tempfile.gettempdir())) / f"feblam-index-{os.getuid()}")


def _private_dir(path: Path) -> Path:
    """``path`` as a folder only this user can use; refuse a symlink or another user's folder."""
    path.mkdir(mode=0o700, exist_ok=True)
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
        msg = f"{path}: not a folder of this user; set hotlists.cache_dir"
        raise FeblamError(msg)
    if st.st_mode & 0o077:
        path.chmod(0o700)
    return path


def build_in_child(settings: HotlistSettings) -> Path:
    """Build the current version once per machine, in a child process, into the cache; its directory."""
    from matchers.builder import build_shared

    return build_shared(settings, cache_dir(settings))


def map_version(directory: Path, live: Index | None = None) -> Index:
    """Memory-map a built version; a layer of deltas over ``live``'s base reuses that base as it is.

    The Bloom filters are loaded (or, for pybloom, rebuilt in slices) one piece at
    a time with a short sleep between, so a flow in this process is never held up
    by more than one piece.
    """
    from matchers.layers import LayeredIndex
    from matchers.store import open_version

    index = open_version(directory, live=live, pause=lambda: time.sleep(0.002))
    log.info(
        "index_mapped",
        version=index.version,
        entries=len(index),
        dir=str(directory),
        layered=isinstance(index, LayeredIndex),
    )
    return index


def build_and_map(settings: HotlistSettings, live: Index | None = None) -> Index:
    """A :data:`Loader`: build in a child process (:func:`build_in_child`), then map (:func:`map_version`)."""
    return map_version(build_in_child(settings), live)


def build_in_process(settings: HotlistSettings, live: Index | None = None) -> Index:  # noqa: ARG001 - a Loader
    """A :data:`Loader`: build the whole version in this process (small lists, tests)."""
    return load_index(settings)


#: Gives the current version of the hotlist directory, reusing what it can of the live one.
Loader = Callable[[HotlistSettings, Index | None], Index]
#: Called with (an index of only the added entries, their (list, entry) ids, the version before, the new version).
AddedHook = Callable[[Index, list[tuple[str, str]], Index, str], None]


def map_published(settings: HotlistSettings, live: Index | None = None) -> Index:
    """A :data:`Loader`: map the version a builder apart published in ``versions_dir`` (never build here)."""
    from matchers.store import open_version, published

    directory = published(settings.versions_dir)
    live_files = live.files_version() if live is not None else None
    if live_files is not None and live_files.source_dir == str(directory.resolve()):
        return live_files
    index = open_version(directory, live=live_files, pause=lambda: time.sleep(0.002))
    log.info("index_mapped", version=index.version, entries=len(index), dir=str(directory), published=True)
    return index


def loader_for(settings: HotlistSettings) -> Loader:
    """The loader the settings ask for: a builder apart's versions, built in a child process and mapped, or built here."""
    if settings.versions_dir:
        return map_published
    return build_and_map if settings.shared_build else build_in_process


class HotlistWatcher(threading.Thread):
    """Polls the hotlist directory; builds, checks (shrink guard) and swaps new versions in."""

    def __init__(
        self,
        settings: HotlistSettings,
        holder: IndexHolder,
        loader: Loader | None = None,
        on_added: AddedHook | None = None,
    ) -> None:
        """``on_added(added, entries, before, version)``: called after a swap of delta files (retro-scans)."""
        super().__init__(name="hotlist-watcher", daemon=True)
        self.settings = settings
        self.holder = holder
        self.loader = loader or loader_for(settings)
        self.on_added = on_added
        self.stop_event = threading.Event()
        self.fingerprint = self._fingerprint()
        #: Per list, the files (name, size, mtime) of the live version: what a list held back keeps.
        self.live_files = _by_list(self.fingerprint[0])
        #: Per list, the latest full snapshot of the live version (the shrink guard compares with it).
        self.live_fulls = latest_fulls(self.fingerprint[0])
        self.rejected = 0
        self.last_error: str | None = None
        #: The version swapped out last: released by this thread at its next poll, not by
        #: the flow's thread (unmapping gigabytes is no work for a batch to wait on).
        self.retired: Index | None = None

    def _fingerprint(self) -> tuple[tuple[tuple[str, str, int, int], ...], frozenset[str]]:
        """The directory's files and the shrink permits in it: a change of either is worth a look.

        With ``versions_dir``, the publication file instead (the builder apart applied the guard).
        """
        if self.settings.versions_dir:
            from matchers.store import PUBLISHED

            try:
                st = (Path(self.settings.versions_dir) / PUBLISHED).stat()
            except OSError:
                return (), frozenset()
            return (("", PUBLISHED, st.st_size, st.st_mtime_ns),), frozenset()
        return hotlists_fingerprint(self.settings.dir), permits(self.settings.dir)

    def _reject(self, error: str, list_id: str | None = None, **fields: object) -> None:
        self.rejected += 1
        self.last_error = error
        if list_id is None:  # a bad file: its list is the folder named in the message
            m = re.search(re.escape(str(Path(self.settings.dir))) + r"/+([^/:]+)", error)
            list_id = m.group(1) if m else "unknown"
        metrics.SNAPSHOT_REJECTED.labels(list_id).inc()
        log.error("snapshot_rejected", error=error, list_id=list_id, live_version=self.holder.current.version, **fields)

    def check(self) -> bool:
        """Load and swap if the directory changed; True when a new version went live."""
        fp = self._fingerprint()
        if fp == self.fingerprint:
            return False
        self.fingerprint = fp
        started = time.perf_counter()
        held: dict[str, str] = {}
        try:
            index = self.loader(self.settings, self.holder.current.files_version())
        except (FeblamError, OSError) as exc:
            held = self._bad_lists(fp[0]) if not self.settings.versions_dir else {}
            if not held:  # no list to blame alone (or one whose live files are gone): nothing changes
                self._reject(str(exc))
                return False
            for list_id, error in held.items():  # every bad list of this poll at once
                self._reject(error, list_id=list_id, reason="held_back")
            shadow = self._shadow(held)
            try:
                index = self.loader(replace(self.settings, dir=str(shadow)), self.holder.current.files_version())
            except (FeblamError, OSError) as again:
                self._reject(str(again))
                return False
            finally:
                shutil.rmtree(shadow, ignore_errors=True)
        self._hold(held)
        if index.version == self.holder.current.files_version().version:
            return False
        fulls = latest_fulls(fp[0])
        changed = {k for k in set(fulls) | set(self.live_fulls) if fulls.get(k) != self.live_fulls.get(k)}
        live_counts = {i.list_id: i.entries for i in self.holder.current.files_version().lists}
        found = shrinks(live_counts, {i.list_id: i.entries for i in index.lists}, changed, self.settings.max_shrink)
        blocked = [s for s in found if s.list_id not in fp[1]]
        for s in blocked:
            self._reject(
                f"{Path(self.settings.dir) / s.list_id}: the new full snapshot would shrink the list from "
                f"{s.live_entries} to {s.new_entries} entries ({s.share:.0%} > hotlists.max_shrink "
                f"{self.settings.max_shrink:.0%}); run 'feblam index allow-shrink {s.list_id}' if that is meant",
                list_id=s.list_id,
                reason="shrink",
                live_entries=s.live_entries,
                new_entries=s.new_entries,
            )
        if blocked:
            return False
        old = self.holder.swap(index)
        live = self.holder.current  # the files' version with the topic's changes on top: the one hits carry
        metrics.index_live(live.version, ((i.list_id, i.entries) for i in live.lists), swapped=True)
        if self.on_added is not None:
            from matchers.build import added_entries

            added, entries = added_entries(index, old)
            if added is not None:
                self.on_added(added, entries, old, self.holder.current.version)
        self.live_fulls = fulls
        self.live_files = {**_by_list(fp[0]), **{lid: self.live_files.get(lid, set()) for lid in held}}
        if found:
            take_permits(self.settings.dir, [s.list_id for s in found])
            log.warning(
                "list_shrink_allowed",
                lists=[s.list_id for s in found],
                entries=[(s.live_entries, s.new_entries) for s in found],
            )
        self.retired = old
        log.info(
            "index_swapped",
            old_version=old.version,
            version=live.version,
            files_version=index.version,
            entries=len(index),
            seconds=round(time.perf_counter() - started, 3),
        )
        return True

    def _bad_lists(self, files: tuple[tuple[str, str, int, int], ...]) -> dict[str, str]:
        """After a failed build: each changed list checked on its own; the ones that fail, with why. Empty when
        a failing list cannot be held back as it was (its live files are no longer there, unchanged)."""
        from matchers.snapshot import load_list

        now = _by_list(files)
        changed = sorted(lid for lid in set(now) | set(self.live_files) if now.get(lid) != self.live_files.get(lid))
        bad: dict[str, str] = {}
        root = Path(self.settings.dir)
        for list_id in changed:
            if not (root / list_id).is_dir():
                continue
            try:
                load_list(root / list_id)
            except (FeblamError, OSError) as exc:
                bad[list_id] = str(exc)
        for list_id in bad:
            kept = self.live_files.get(list_id, set())
            if not kept <= now.get(list_id, set()):
                return {}  # a live file was changed or removed in place: the list cannot stay as it was
        return bad

    def _shadow(self, held: dict[str, str]) -> Path:
        """A folder of links: every list as it is now, the held ones as they were (their live files only)."""
        root = Path(self.settings.dir).absolute()
        shadow = Path(tempfile.mkdtemp(prefix="feblam-held-"))
        for d in list_dirs(root):
            if d.name not in held:
                (shadow / d.name).symlink_to(d, target_is_directory=True)
                continue
            (shadow / d.name).mkdir()
            for _list, name, _size, _mtime in sorted(self.live_files.get(d.name, ())):
                (shadow / d.name / name).symlink_to(d / name)
        return shadow

    def _hold(self, held: dict[str, str]) -> None:
        """Say which lists are held back (``/ready``, ``feblam_list_held_back``) and which are released."""
        for list_id in set(self.holder.held_back) - set(held):
            metrics.LISTS_HELD_BACK.remove(list_id)
            log.info("list_released", list_id=list_id)
        for list_id in held:
            metrics.LISTS_HELD_BACK.labels(list_id).set(1)
        self.holder.held_back = {lid: err[:500] for lid, err in held.items()}

    def run(self) -> None:
        while not self.stop_event.wait(self.settings.poll_seconds):
            self.retired = None
            try:
                self.check()
            except Exception as exc:  # noqa: BLE001 - the watcher must outlive any surprise
                log.error("hotlist_watch_failed", error=repr(exc))

    def stop(self) -> None:
        self.stop_event.set()


def _by_list(files: tuple[tuple[str, str, int, int], ...]) -> dict[str, set[tuple[str, str, int, int]]]:
    out: dict[str, set[tuple[str, str, int, int]]] = {}
    for f in files:
        out.setdefault(f[0], set()).add(f)
    return out


@dataclass
class LiveIndex:
    """The live version (``holder``) and, when watched, the watcher that swaps new ones in."""

    holder: IndexHolder
    watcher: HotlistWatcher | None = None

    @property
    def current(self) -> Index:
        return self.holder.current

    def close(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()


def open_live_index(settings: HotlistSettings, *, watch: bool = True, on_added: AddedHook | None = None) -> LiveIndex:
    """Build (or find) and map the current version of ``settings.dir``; with ``watch``, keep it current.

    Raises :class:`~feblam.errors.SnapshotError` (file, row, column) when the
    directory does not give a valid first version.
    """
    holder = IndexHolder(loader_for(settings)(settings, None))
    watcher = None
    if watch:
        watcher = HotlistWatcher(settings, holder, on_added=on_added)
        watcher.start()
    return LiveIndex(holder, watcher)


def watch_and_publish(settings: HotlistSettings, out: str | Path, stop: threading.Event) -> None:
    """The builder apart (``feblam index build --watch --out DIR``): versions of the hotlist directory, published.

    Builds each new version (child process, as a job would) into ``out`` and,
    once the shrink guard lets it through, names it in ``out/CURRENT``; jobs with
    ``[hotlists] versions_dir = out`` map it. This keeps the build's memory traffic
    off the machines that run the flow, and many job processes share one build.
    """
    from matchers.builder import build_shared
    from matchers.store import open_version, publish

    settings = replace(settings, versions_dir="")

    def build(s: HotlistSettings, live: Index | None) -> Index:
        return open_version(build_shared(s, out), live=live.files_version() if live is not None else None)

    def published_now(index: Index) -> Index:
        publish(out, str(index.files_version().source_dir))
        log.info("version_published", version=index.version, entries=len(index), dir=str(out))
        return index

    holder = IndexHolder(published_now(build(settings, None)))
    holder.wrap = published_now
    watcher = HotlistWatcher(settings, holder, loader=build)
    while not stop.wait(settings.poll_seconds):
        try:
            watcher.check()
        except Exception as exc:  # noqa: BLE001 - the builder must outlive any surprise
            log.error("hotlist_watch_failed", error=repr(exc))
