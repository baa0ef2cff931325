"""The console in a real browser: Debian's headless Chromium, driven by Selenium, against ``feblam gateway``
on the bundled broker.

A desk signs in and sees a hit arrive within a second of reaching the hits
topic, acknowledges it and sees the state change; a covert hit is marked "do
not intercept"; a second desk does not see either and is refused them. The
screenshot in ``docs/images/gateway-board.png`` is this test's (run it with
``FEBLAM_UPDATE_SCREENSHOTS=1`` to take it again).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from sources.broker import EmbeddedBroker, free_port
from tests.support.gateway import PASSWORD, gateway_doc, hit_doc, produce_hits, start_gateway, write_config
from tests.support.kafka import read_topic
from tests.support.processes import stop, wait_log

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")


def browser() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM or "chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1440,900", "--disable-gpu"):
        opts.add_argument(arg)
    return webdriver.Chrome(options=opts, service=Service(executable_path=DRIVER or "chromedriver"))


@contextlib.contextmanager
def running_gateway(
    broker: EmbeddedBroker,
    p: str,
    tmp_path: Path,
    plates: tuple[str, ...],
    edit: Callable[[dict[str, Any]], None] | None = None,
    **gateway: Any,
) -> Iterator[str]:
    """``feblam gateway`` on the test's topics (``edit``: changes to its settings), until the block ends; then
    it must stop cleanly, with no traceback and none of ``plates`` in its log."""
    broker.create_topics([f"{p}.hits"], partitions=2)
    broker.create_topics(
        [f"{p}.{t}" for t in ("hit-events", "hit-actions", "hit-access", "list-quality", "deadletter")]
    )
    port = free_port()
    doc = gateway_doc(broker.address, p, http_port=port, **gateway)
    doc["kafka"]["poll_timeout_ms"] = 20
    doc["recovery"] = {"dir": str(tmp_path / "state"), "snapshot_seconds": 0.5}
    if edit is not None:
        edit(doc)
    log = tmp_path / "gateway.log"
    proc = start_gateway(write_config(tmp_path / "gateway.toml", doc), log)
    try:
        wait_log(log, "console_listening", 60)
        wait_log(log, f'"topic": "{p}.hits", "partition": 1', 60)
        yield f"http://127.0.0.1:{port}"
    finally:
        assert stop(proc) == 0, log.read_text()[-3000:]
        text = log.read_text()
        assert "Traceback" not in text
        assert not [plate for plate in plates if plate in text]  # no plate in any log line


@pytest.fixture
def gateway(broker: EmbeddedBroker, topic_prefix: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    with running_gateway(broker, topic_prefix, tmp_path, ("1ABC123", "2OBS456")) as url:
        yield url, "gateway.log"


def sign_in(driver: Any, url: str, user: str, live: str = "live") -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url + "/")
    assert driver.current_url.endswith("/login")  # no page without a login
    driver.find_element(By.ID, "user").send_keys(user)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "signin").click()
    WebDriverWait(driver, 10).until(lambda d: d.find_element(By.ID, "status").text == live)


def card(driver: Any, hit_id: str) -> dict[str, str] | None:
    """A card's state and text, read in the page in one step (the board redraws whole: an element found
    a moment ago may be gone)."""
    return driver.execute_script(
        "const c = document.querySelector(`[data-hit-id='${arguments[0]}']`);"
        "return c ? {state: c.dataset.state, text: c.innerText} : null;",
        hit_id,
    )


def click(driver: Any, hit_id: str, selector: str) -> None:
    driver.execute_script(f"document.querySelector(`[data-hit-id='${{arguments[0]}}'] {selector}`).click();", hit_id)


def order_of(driver: Any) -> list[str]:
    return driver.execute_script("return [...document.querySelectorAll('article.card')].map(c => c.dataset.hitId);")


@pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="needs Debian's chromium and chromium-driver (make browser)")
def test_a_desk_sees_a_hit_arrive_and_acknowledges_it_another_desk_does_not(
    gateway: tuple[str, str],
    broker: EmbeddedBroker,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url, _ = gateway
    hits_topic = f"{topic_prefix}.hits"
    brussels, antwerp = browser(), browser()
    try:
        sign_in(brussels, url, "brussels-1")
        sign_in(antwerp, url, "antwerp-1")
        assert brussels.find_element(By.ID, "desk").text == "brussels"

        hit = hit_doc("CAM-BXL-017", priority=1, plate="1ABC123")
        produced = time.monotonic()
        produce_hits(broker.address, hits_topic, [hit])
        WebDriverWait(brussels, 5, poll_frequency=0.02).until(lambda d: card(d, hit["hit_id"]) is not None)
        seen_after = time.monotonic() - produced
        assert seen_after <= 1.0, f"the hit took {seen_after:.3f} s from the hits topic to the board"
        c = card(brussels, hit["hit_id"])
        assert c is not None and c["state"] == "new"
        for text in (
            "1ABC123",
            "BE",
            "CAM-BXL-017",
            "BE-STOLEN / S-1",
            "exact",
            "stolen in Ixelles",
            "intercept",
            f"img://CAM-BXL-017/{hit['hit_id']}.jpg",
            "50.84660, 4.35280",
        ):
            assert text in c["text"], text
        assert "DO NOT INTERCEPT" not in c["text"]
        assert brussels.execute_script("return window.feblamAlerts") == 1  # a priority-1 hit arriving: an alert
        assert antwerp.execute_script("return window.feblamAlerts") == 0

        covert = hit_doc("CAM-BXL-020", priority=2, action="observe", plate="2OBS456")
        older = hit_doc("CAM-BXL-003", priority=3, plate="3OLD789")
        produce_hits(broker.address, hits_topic, [covert, older])
        WebDriverWait(brussels, 5, poll_frequency=0.05).until(
            lambda d: card(d, covert["hit_id"]) and card(d, older["hit_id"])
        )
        assert "DO NOT INTERCEPT" in card(brussels, covert["hit_id"])["text"]  # type: ignore[index]
        assert brussels.execute_script("return window.feblamAlerts") == 2  # priority 2 alerts too; 3 does not
        assert order_of(brussels) == [hit["hit_id"], covert["hit_id"], older["hit_id"]]  # highest priority first

        click(brussels, hit["hit_id"], "button.ack")
        WebDriverWait(brussels, 5, poll_frequency=0.05).until(
            lambda d: (card(d, hit["hit_id"]) or {}).get("state") == "acknowledged"
        )
        assert "Acknowledged by brussels-1" in card(brussels, hit["hit_id"])["text"]  # type: ignore[index]

        shots = (ROOT / "docs" / "images") if os.environ.get("FEBLAM_UPDATE_SCREENSHOTS") else tmp_path
        shots.mkdir(parents=True, exist_ok=True)
        assert brussels.save_screenshot(str(shots / "gateway-board.png"))
        # A laptop and a dispatch centre's wall screen: no sideways scrolling, and larger text on the wall.
        sizes = {}
        for name, (w, h) in (("laptop", (1280, 800)), ("wall", (2560, 1440))):
            brussels.set_window_size(w, h)
            assert brussels.execute_script("return document.documentElement.scrollWidth <= window.innerWidth"), name
            sizes[name] = brussels.execute_script(
                "return parseFloat(getComputedStyle(document.documentElement).fontSize)"
            )
        assert sizes["wall"] > sizes["laptop"] * 1.3, sizes
        assert brussels.save_screenshot(str(shots / "gateway-board-wall.png"))
        assert (shots / "gateway-board.png").stat().st_size > 10_000

        # The second desk: an empty board, and the hits refused by id.
        time.sleep(0.5)
        assert card(antwerp, hit["hit_id"]) is None and card(antwerp, covert["hit_id"]) is None
        assert "No cases for this desk." in antwerp.find_element(By.ID, "board").text
        status = antwerp.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "fetch('/api/hits/' + arguments[0]).then(r => done(r.status));",
            hit["hit_id"],
        )
        assert status == 403
        posted = antwerp.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "const t = document.querySelector('meta[name=csrf-token]').content;"
            "fetch('/api/hits/' + arguments[0] + '/acknowledge', {method: 'POST', headers: {'X-CSRF-Token': t}})"
            ".then(r => done(r.status));",
            covert["hit_id"],
        )
        assert posted == 403
    finally:
        brussels.quit()
        antwerp.quit()

    events = [orjson.loads(m.value()) for m in read_topic(broker.address, f"{topic_prefix}.hit-events", expect=4)]
    mine = [(e["desk"], e["state"], e["user"]) for e in events if e["hit_id"] == hit["hit_id"]]
    assert mine == [("brussels", "new", None), ("brussels", "acknowledged", "brussels-1")]
