"""Running ``feblam`` as an operator would (a subprocess) and waiting on it, for the job tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson

FEBLAM = str(Path(sys.executable).with_name("feblam"))


def clean_env() -> dict[str, str]:
    """This environment without FEBLAM_* variables (they would override the test's configuration)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("FEBLAM_")}


def start(cfg: Path, log: Path, *args: str) -> subprocess.Popen[bytes]:
    """``feblam run --config cfg`` in the background, its output appended to ``log``."""
    return subprocess.Popen(
        [FEBLAM, "run", "--config", str(cfg), *args], stdout=log.open("ab"), stderr=subprocess.STDOUT, env=clean_env()
    )


def stop(proc: subprocess.Popen[bytes]) -> int:
    """SIGTERM, and the exit status."""
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=30)


def wait_for(predicate: Callable[[], object], timeout: float = 60) -> bool:
    """True as soon as ``predicate()`` is, False after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def wait_log(log: Path, text: str, timeout: float = 60) -> None:
    """Until ``text`` appears in ``log``; the log's tail in the assertion otherwise."""
    if not wait_for(lambda: text in log.read_text(), timeout):
        raise AssertionError(log.read_text()[-3000:])


def canonical(read_id: str, plate: str, ts: str = "2026-11-28T12:00:00Z") -> bytes:
    """A canonical read as JSON."""
    return orjson.dumps({"read_id": read_id, "camera_id": "CAM-X", "ts": ts, "plate_raw": plate})


def feblam(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    clean = clean_env()
    return subprocess.run(
        [FEBLAM, *args], capture_output=True, text=True, timeout=timeout, check=False, env={**clean, **(env or {})}
    )


def error_lines(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.startswith("feblam: error:")]


def assert_one_clear_line(proc: subprocess.CompletedProcess[str], *names: str) -> str:
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "Traceback" not in out and "panicked" not in out, out
    lines = error_lines(proc)
    assert len(lines) == 1, out
    for name in names:
        assert name in lines[0], lines[0]
    return lines[0]


# ---------------------------------------------------------------- configuration rows
