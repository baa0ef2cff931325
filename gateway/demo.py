"""The Hit Gateway of ``feblam demo``: ``feblam gateway`` as a child process over the demo's hits topic."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from feblam.config import Settings, replace

#: The demo's desks: one per simulated region, escalating to a national desk that also sees every priority-1 hit.
DEMO_DESKS = (
    ("sicad-brussels", ("CAM-BXL-",)),
    ("sicad-antwerp", ("CAM-ANT-",)),
    ("sicad-liege", ("CAM-LIE-",)),
    ("sicad-gent", ("CAM-GNT-",)),
    ("highway-police", ("E40-KM", "E19-KM")),
)


class DemoGateway:
    """``feblam gateway`` as a child process over the demo's hits topic, with a demo login per desk.

    The password is made for this run and printed; the configuration (with the
    hashes only) is ``gateway.toml`` in the output folder, its log ``gateway.log``.
    """

    def __init__(self, settings: Settings, out_dir: Path) -> None:
        import secrets
        import tempfile

        from feblam.config import DeadletterSettings, DeskSettings, Rule, UserSettings
        from gateway.console.auth import hash_password

        self.password = secrets.token_urlsafe(9)
        self.state_dir = tempfile.mkdtemp(
            prefix="feblam-demo-gateway-"
        )  # the demo's broker is new each run: so is this
        hashed = hash_password(self.password)
        desks = [
            DeskSettings(
                name=name,
                rule=Rule(camera_prefixes=prefixes),
                escalate_to="sicad-national",
                users=(UserSettings(f"demo-{name.split('-', 1)[1]}", hashed),),
            )
            for name, prefixes in DEMO_DESKS
        ]
        desks.append(
            DeskSettings(
                name="sicad-national", rule=Rule(max_priority=1), users=(UserSettings("demo-national", hashed),)
            )
        )
        port = settings.gateway.http_port
        self.settings = replace(
            settings,
            desks=tuple(desks),
            recovery=replace(settings.recovery, dir=self.state_dir),
            deadletter=DeadletterSettings(topic="", path=str(out_dir / "gateway-deadletter.jsonl")),
            gateway=replace(
                settings.gateway,
                hits_topics=("hits",),
                secure_cookies=False,
                escalate_after_seconds={"1": 60.0, "2": 120.0, "3": 300.0},
                http_port=port,
                http_host="127.0.0.1",
            ),
            logging=replace(settings.logging, format="json"),
        )
        self.config = out_dir / "gateway.toml"
        self.log = out_dir / "gateway.log"
        self.url = f"http://127.0.0.1:{port}/"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> DemoGateway:
        from feblam.config import settings_toml

        self.config.write_text(settings_toml(self.settings), encoding="utf-8")
        self.config.chmod(0o600)
        env = {
            k: v for k, v in os.environ.items() if not k.startswith("FEBLAM_")
        }  # the file is the whole configuration
        self.proc = subprocess.Popen(  # noqa: S603 - our own CLI
            [sys.executable, "-m", "feblam.cli", "gateway", "--config", str(self.config)],
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            env=env,
        )
        return self

    def wait_listening(self, timeout: float = 30.0) -> bool:
        """Whether the console listens within ``timeout`` (False: the child exited or is still starting)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                return False
            if self.log.exists() and b"console_listening" in self.log.read_bytes():
                return True
            time.sleep(0.1)
        return False

    def stop(self) -> None:
        import shutil

        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        shutil.rmtree(self.state_dir, ignore_errors=True)

    def announce(self) -> str:
        """The console's address and the demo's login, once it listens; or why it did not start."""
        if self.wait_listening():
            return (
                f"Hit Gateway console: {self.url} - sign in as demo-brussels (or demo-antwerp, demo-liege, "
                f"demo-gent, demo-national, demo-police) with password {self.password}"
            )
        last = self.log.read_text(errors="replace").strip().splitlines()[-1:] if self.log.exists() else []
        return f"Hit Gateway did not start ({last[0] if last else 'no output'}); see {self.log}"
