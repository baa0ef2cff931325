"""Cases per vehicle in a real browser (Debian's headless Chromium, Selenium) against ``feblam gateway``.

One vehicle read at 5 cameras of Brussels and 2 of Antwerp within 20 minutes:
Brussels has one card with 5 sightings, Antwerp one card that names Brussels'
open case (and, once acknowledged, who did it); each desk was alerted once
(the sightings came within the quiet spell); Brussels reads its board in
French, Antwerp in Dutch; the trail is on a map (Leaflet, served by the
gateway). With ``FEBLAM_UPDATE_SCREENSHOTS=1`` the boards are saved as
``docs/images/gateway-board-fr.png`` and ``gateway-board-nl.png``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from feblam.serde import format_ts
from sources.broker import EmbeddedBroker
from tests.support.gateway import hit_doc, produce_hits
from tests.system.test_gateway_browser import CHROMIUM, DRIVER, ROOT, browser, card, click, running_gateway, sign_in

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
PLATE = "1CAS555"


@pytest.fixture
def gateway(broker: EmbeddedBroker, topic_prefix: str, tmp_path: Path) -> Iterator[str]:
    def languages(doc: dict) -> None:
        doc["desks"][0]["users"][0]["language"] = "fr"
        doc["desks"][1]["users"][0]["language"] = "nl"

    with running_gateway(
        broker,
        topic_prefix,
        tmp_path,
        (PLATE,),
        languages,
        escalate_after_seconds={"1": 3600},
        map_tiles_url="https://127.0.0.1:9/{z}/{x}/{y}.png",
    ) as url:
        yield url


def sightings() -> list[dict]:
    """The vehicle at 5 Brussels cameras and then 2 Antwerp ones, 20 minutes in all."""
    start = datetime.now(UTC) - timedelta(minutes=20)
    out = []
    cams = [f"CAM-BXL-{i:03d}" for i in range(1, 6)] + ["CAM-ANT-001", "CAM-ANT-002"]
    for i, cam in enumerate(cams):
        at = start + timedelta(minutes=i * 20 / 6)
        h = hit_doc(cam, plate=PLATE, emitted_at=at, lat=50.85 + i * 0.03, lon=4.35 + i * 0.01)
        h["read"]["ts"] = format_ts(at)
        out.append(h)
    return out


@pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="needs Debian's chromium and chromium-driver (make browser)")
def test_one_vehicle_at_two_regions_is_one_case_per_desk_in_french_and_dutch(
    gateway: str, broker: EmbeddedBroker, topic_prefix: str, tmp_path: Path
) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    url = gateway
    brussels, antwerp = browser(), browser()
    try:
        sign_in(brussels, url, "brussels-1", live="en direct")
        sign_in(antwerp, url, "antwerp-1", live="live")
        hits = sightings()
        for h in hits:  # one by one, as the cameras saw it
            produce_hits(broker.address, f"{topic_prefix}.hits", [h])
            time.sleep(0.05)
        # (the test's hits are spread over two partitions, so either may open the case; the job keys a
        # vehicle's hits by its keyed plate hash, one partition, in order)
        WebDriverWait(brussels, 10, poll_frequency=0.05).until(
            lambda d: "vu 5 fois" in d.find_element("id", "board").text
        )
        WebDriverWait(antwerp, 10, poll_frequency=0.05).until(
            lambda d: "2 keer gezien" in d.find_element("id", "board").text
        )
        first_bxl, first_ant = (
            d.execute_script("return document.querySelector('article.card').dataset.hitId") for d in (brussels, antwerp)
        )
        assert first_bxl in [h["hit_id"] for h in hits[:5]] and first_ant in [h["hit_id"] for h in hits[5:]]
        assert brussels.execute_script("return document.querySelectorAll('article.card').length") == 1
        assert antwerp.execute_script("return document.querySelectorAll('article.card').length") == 1
        bxl = card(brussels, first_bxl)["text"]  # type: ignore[index]
        for text in ("vu 5 fois en 13 min", "nouveau", "Prendre en charge", "Clôturer", "Caméra", "CAM-BXL-005"):
            text = text.upper() if text == "nouveau" else text  # the state badge is in capitals
            assert text in bxl, text
        assert bxl.count("CAM-BXL-00") >= 5 and "CAM-ANT" not in bxl  # the trail of Brussels' own cameras
        ant = card(antwerp, first_ant)["text"]  # type: ignore[index]
        for text in ("ook open bij brussels", "NIEUW", "In behandeling nemen", "Afsluiten", "Richting"):
            assert text in ant, text
        # the day first, 24 h, as a Belgian reads it
        day = datetime.fromisoformat(hits[5]["read"]["ts"].replace("Z", "+00:00")).astimezone()
        assert day.strftime("%d/%m/%Y") in ant or day.strftime("%d.%m.%Y") in ant or day.strftime("%d-%m-%Y") in ant
        # alerted once each: the sightings came within the quiet spell, each desk from its own region
        assert brussels.execute_script("return window.feblamAlerts") == 1
        assert antwerp.execute_script("return window.feblamAlerts") == 1
        # the trail on a map, with the gateway's own Leaflet (no CDN)
        assert brussels.execute_script("return document.querySelectorAll('.map.leaflet-container').length") == 1
        assert brussels.execute_script("return typeof L") == "object"

        click(brussels, first_bxl, "button.ack")
        WebDriverWait(antwerp, 10, poll_frequency=0.05).until(
            lambda d: "in behandeling door brussels-1" in ((card(d, first_ant) or {}).get("text") or "")
        )
        WebDriverWait(brussels, 10, poll_frequency=0.05).until(
            lambda d: (card(d, first_bxl) or {}).get("state") == "acknowledged"
        )
        assert "Pris en charge par brussels-1" in card(brussels, first_bxl)["text"]  # type: ignore[index]
        # the keyboard: j selects the card, c goes to its outcome
        brussels.find_element("tag name", "body").send_keys("j")
        assert brussels.execute_script("return document.querySelector('article.card.selected') !== null")

        shots = (ROOT / "docs" / "images") if os.environ.get("FEBLAM_UPDATE_SCREENSHOTS") else tmp_path
        shots.mkdir(parents=True, exist_ok=True)
        for d in (brussels, antwerp):
            d.set_window_size(1440, 1300)
            d.execute_script("window.scrollTo(0, 0)")
        assert brussels.save_screenshot(str(shots / "gateway-board-fr.png"))
        assert antwerp.save_screenshot(str(shots / "gateway-board-nl.png"))
    finally:
        brussels.quit()
        antwerp.quit()
