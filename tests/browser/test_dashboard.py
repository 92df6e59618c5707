"""The supervisors' dashboard in a real browser (Debian's Chromium driven by Playwright), served
by a live engine on the emulated switch: what a supervisor sees on the wall screen, and that the
controls are refused without a valid token."""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.integration.harness import ROOT, Site, start_site

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = ROOT / "artifacts"
#: The flags this machine's closed network needs (no background connections, no sandbox as root).
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


@contextlib.asynccontextmanager
async def chromium(*extra_flags: str) -> AsyncIterator[Browser]:
    """Debian's Chromium, headless, with this machine's flags and the test's own."""
    assert Path(CHROMIUM).exists(), "chromium is missing: run scripts/setup.sh (Debian package 'chromium')"
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                    args=[*FLAGS, *extra_flags])
        yield launched
        await launched.close()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as launched:
        yield launched


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    running = await start_site()
    yield running
    await running.close()


async def open_dashboard(browser: Browser, site: Site, token: str) -> Page:
    page = await browser.new_page(viewport={"width": 1600, "height": 900})
    await page.goto(site.base_url + "/dashboard")
    await page.fill("#token", token)
    await page.click("text=Ouvrir")
    return page


async def test_a_waiting_call_shows_within_two_seconds(browser: Browser, site: Site) -> None:
    await site.login(site.desk("1001", answer_after=0.2), ["n1-arm"], "arm-n1", "ARM Martin")
    await site.login(site.desk("2001", answer_after=0.2), ["n2-amu"], "mru", "Dr Petit")
    page = await open_dashboard(browser, site, "desk-token")
    await expect(page.locator("#site")).to_contain_text("sas-69")
    await expect(page.locator('[data-queue="n1-arm"] .waiting')).to_have_text("0")

    # Nobody logged in to the MG queue: an ATSU call on its direct MG line waits there.
    waiting = site.call("0472000021", "0472888888", name="ATSU 69")
    site.server._wake.set()
    seen_at = time.monotonic()
    row = page.locator(f'#waiting tr[data-call="sas-69-{waiting.uniqueid}"]')
    await expect(row).to_be_visible(timeout=2000)
    assert time.monotonic() - seen_at < 2.0
    await expect(row).to_contain_text("atsu-mg")
    await expect(page.locator('[data-queue="n2-mg"] .waiting')).to_have_text("1")
    await expect(page.locator("#alarms")).to_contain_text("n2-mg : personne de connecté (1 en attente)")
    await expect(page.locator('[data-queue="n2-mg"]')).to_have_class(re.compile(r"\bbad\b"))  # red, not orange
    await expect(row).to_contain_text("urgent")  # the band, not a raw queue priority

    # A 15 call answered by the N1 desk: counted in the QS30 tiles, gone from the waiting list.
    answered = site.call("15", "0612345678")
    await expect(page.locator("#qs-today")).to_have_text("100 %", timeout=5000)
    await expect(page.locator("#context-today")).to_contain_text("présentés 2")
    await expect(page.locator(f'#waiting tr[data-call="sas-69-{answered.uniqueid}"]')).to_have_count(0)
    await expect(page.locator("#agents")).to_contain_text("ARM Martin")
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)


async def test_a_wrong_token_is_refused_and_a_desk_cannot_switch_lines(browser: Browser, site: Site) -> None:
    page = await open_dashboard(browser, site, "not-a-token")
    await expect(page.locator("#login-error")).to_contain_text("jeton refusé")
    assert await page.locator("#app").is_hidden()

    page = await open_dashboard(browser, site, "desk-token")
    await expect(page.locator("#sw-line option")).not_to_have_count(0)
    await page.select_option("#sw-line", "116117")
    await page.fill("#sw-reason", "essai")
    await page.click("text=Basculer")
    await expect(page.locator("#message")).to_contain_text("supervisor")
    assert "116117" not in site.engine.mutual_aid.switchovers


async def test_a_supervisor_switches_a_line_over_and_gives_it_back(browser: Browser, site: Site) -> None:
    page = await open_dashboard(browser, site, "super-token")
    await expect(page.locator("#sw-line option")).not_to_have_count(0)
    await page.select_option("#sw-line", "116117")
    await page.select_option("#sw-partner", "sas-38")
    await page.fill("#sw-share", "30")
    await page.fill("#sw-reason", "renfort de nuit")
    await page.click("text=Basculer")
    await expect(page.locator("#mutual")).to_contain_text("116117 → sas-38 (30 %) par sup-1", timeout=5000)
    assert site.engine.mutual_aid.switchovers["116117"].share == 30
    assert site.switch.astdb.get("sas-switch/116117", "").startswith("sas-38:30")

    asked: list[str] = []

    async def unexpected(dialog: Any) -> None:
        asked.append(dialog.message)
        await dialog.dismiss()

    page.on("dialog", unexpected)
    await expect(page.locator("#message")).to_have_text("bascule enregistrée")
    await page.click("#mutual", position={"x": 5, "y": 5})  # a click beside the buttons does nothing
    await page.wait_for_timeout(300)
    assert asked == [] and await page.locator("#message").text_content() == "bascule enregistrée"
    page.remove_listener("dialog", unexpected)
    page.once("dialog", lambda dialog: asyncio.ensure_future(dialog.accept("fin du renfort")))
    await page.click("text=Rendre la ligne")
    await expect(page.locator("#message")).to_have_text("ligne 116117 reprise", timeout=5000)
    await expect(page.locator("#mutual")).not_to_contain_text("116117 →", timeout=5000)
    assert "116117" not in site.engine.mutual_aid.switchovers


async def test_a_big_room_shows_one_line_per_role_and_keeps_what_the_supervisor_unfolds(
        browser: Browser, site: Site) -> None:
    # 14 desks: more than a small room, so each role starts folded to its counts.
    for index in range(10):
        await site.login(site.desk(f"10{index + 10:02d}"), ["n1-arm"], "arm-n1", f"ARM {index:02d}")
    for index in range(4):
        await site.login(site.desk(f"20{index + 10:02d}"), ["n2-amu"], "mru", f"MRU {index:02d}")
    status, body = await site.post("/api/agents/pause", {"interface": "PJSIP/1010", "reason": "pause"})
    assert status == 200, body
    page = await open_dashboard(browser, site, "super-token")

    arm = page.locator('#agents details[data-role="arm-n1"]')
    await expect(arm.locator("summary")).to_contain_text("arm-n1 — 10")
    await expect(arm.locator('summary [data-count="available"]')).to_have_text("9 libre")
    await expect(arm.locator('summary [data-count="paused"]')).to_have_text("1 en pause")
    await expect(page.locator('#agents details[data-role="mru"] summary')).to_contain_text("4 libre")
    assert await arm.get_attribute("open") is None
    assert await arm.locator('tr[data-agent="PJSIP/1011"]').is_hidden()

    await arm.locator("summary").click()
    await expect(arm.locator('tr[data-agent="PJSIP/1011"]')).to_be_visible()
    await expect(arm.locator("tr").last).to_contain_text("en pause")  # free desks first, the paused one last
    # A call changes the figures: the dashboard re-renders, the unfolded role stays unfolded.
    site.call("15", "0612345678")
    await expect(arm.locator('summary [data-count="available"]')).to_have_text("8 libre", timeout=5000)
    await expect(arm.locator('tr[data-agent="PJSIP/1011"]')).to_be_visible()
    assert await page.locator('#agents details[data-role="mru"]').get_attribute("open") is None


async def test_the_wall_screen_opens_from_its_address_fits_1080p_and_a_supervisor_acknowledges(
        browser: Browser, site: Site) -> None:
    """A wall screen is opened once with a read-only token in the address fragment (never sent to
    the server), and at 1920x1080 the alarms and the queues stay on screen however many wait."""
    for index in range(50):
        site.call("116117" if index % 2 else "15", f"06300000{index:02d}")
    await expect_eventually(lambda: len(site.engine.tracker.waiting()) == 50)
    page = await browser.new_page(viewport={"width": 1920, "height": 1080})
    await page.goto(site.base_url + "/dashboard#token=wall-screen-token-0123&wall")
    await expect(page.locator("#waiting-more")).to_have_text("… et 40 autres en attente", timeout=5000)
    await expect(page.locator("#waiting tr[data-call]")).to_have_count(10)
    await expect(page.locator("#waiting-count")).to_contain_text("50")
    assert "token" not in page.url  # wiped from the address bar
    assert await page.locator("#login").is_hidden()
    assert all([await c.is_hidden() for c in await page.locator(".controls").all()])
    assert await page.locator("button.ack").first.is_hidden()
    for selector in ("#alarms", "#queues", "#qs-15m", "#waiting-more"):
        box = await page.locator(selector).bounding_box()
        assert box is not None and box["y"] + min(box["height"], 60) <= 1080, f"{selector} pushed off screen"
    await expect(page.locator('[data-queue="n1-arm"]')).to_have_attribute("data-service", "drowning")
    bands = await page.locator("#waiting tr[data-call] td:nth-child(3)").all_text_contents()
    assert bands == sorted(bands, key=lambda b: not b.startswith("urgent")), "urgent callers listed first"
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "dashboard-wall-1080p.png"))
    status, _ = await site.post("/api/alarms/nobody:n1-arm/ack", {}, "wall-screen-token-0123")
    assert status == 403  # a wall screen only reads

    # Critical and unacknowledged: the wall flashes and sounds until every one is acknowledged.
    await expect(page.locator("body")).to_have_attribute("data-alerting", "1")
    assert await page.evaluate("window.sasBeeps") >= 1
    supervisor = await open_dashboard(browser, site, "super-token")
    critical = [a["key"] for a in site.live.supervision.alarm_board.active(site.engine.clock())  # type: ignore[union-attr]
                if a["level"] == "critical"]
    assert "nobody:n1-arm" in critical
    for key in critical:
        alarm = supervisor.locator(f'[data-alarm="{key}"]')
        await alarm.locator("button.ack").click()
        await expect(alarm).to_contain_text("acquittée par sup-1", timeout=5000)
    await expect(page.locator('[data-alarm="nobody:n1-arm"]')).to_contain_text("acquittée par sup-1")
    await expect(page.locator("body")).to_have_attribute("data-alerting", "0")


async def expect_eventually(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_a_supervisor_finds_a_call_s_recording_and_hears_it_and_the_listen_is_audited(
        browser: Browser, site: Site) -> None:
    await site.login(site.desk("1001", answer_after=0.1), ["n1-arm"], "arm-n1")
    caller = site.call("15", "0644556677")
    caller.tone_hz = 440.0
    call = await site_call(site, caller.uniqueid)
    await asyncio.sleep(1.5)
    site.switch.request_hangup(caller, 16)
    site.server._wake.set()
    recorder = site.live.supervision.recorder  # type: ignore[union-attr]
    await expect_eventually(lambda: call.call_id in recorder.index, timeout=15)

    page = await open_dashboard(browser, site, "super-token")
    await page.fill("#rec-query", "0644556677")
    await page.click("#rec-form button")
    row = page.locator(f'#recordings tr[data-recording="{call.call_id}"]')
    await expect(row).to_contain_text("ok")
    await row.locator("button[data-listen]").click()
    player = page.locator("#player")
    await expect(player).to_have_attribute("data-call", call.call_id)
    seconds = await page.wait_for_function(
        "() => { const p = document.getElementById('player'); return p.duration > 0 && p.duration; }")
    assert abs(await seconds.json_value() - recorder.index[call.call_id].duration) < 0.2
    status, audit = await site.get(f"/api/audit?call={call.call_id}", "super-token")
    assert status == 200
    assert any(e["client"] == "sup-1" and e["action"] == "GET listen recording" and e["status"] == 200
               for e in audit)

    desk = await open_dashboard(browser, site, "desk-token")
    await desk.fill("#rec-query", "0644556677")
    await desk.click("#rec-form button")
    await expect(desk.locator("#rec-message")).to_contain_text("refusé")


async def site_call(site: Site, uniqueid: str):
    await expect_eventually(lambda: (c := site.engine.tracker.calls.get(uniqueid)) is not None
                            and c.current_leg is not None)
    return site.engine.tracker.calls[uniqueid]
