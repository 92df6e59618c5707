"""The regulator's telephony bar in a real browser (Chromium) on the emulated switch: a desk logs
in, takes a 15 call, qualifies it P1 with one key and the caller lands in N2 AMU — keyboard only —
and the bar says when an action is refused and when the link to the engine is lost. Screenshots
of the bar (idle, ringing, talking) are kept in artifacts/."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, expect

from tests.browser.test_dashboard import ARTIFACTS, browser  # noqa: F401  (the shared fixture)
from tests.integration.harness import Site, eventually, start_site

DESK_TOKEN = "lrm1-token-0123456789"  # bound to desk 1001 only


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    running = await start_site()
    yield running
    await running.close()


async def test_a_desk_logs_in_takes_a_15_call_and_qualifies_it_p1_with_the_keyboard_alone(
        browser: Browser, site: Site) -> None:  # noqa: F811
    await site.login(site.desk("2001", answer_after=0.3), ["n2-amu"], "mru", "Dr Petit")
    site.desk("1001", answer_after=2.5)  # the desk phone rings a while before it is picked up
    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    await page.goto(f"{site.base_url}/desk#token={DESK_TOKEN}")
    assert "token" not in page.url
    await expect(page.locator("#desk-name")).to_contain_text("Poste 1001")
    await expect(page.locator("#status")).to_have_text("déconnecté")
    ARTIFACTS.mkdir(exist_ok=True)

    # Log in with the keyboard: the first queue (N1) is ticked, the role chosen, Enter.
    await page.focus("#role")
    await page.keyboard.press("Home")  # ARM N1
    await page.focus("#login")
    await page.keyboard.press("Enter")
    await expect(page.locator("#status")).to_have_text("libre", timeout=5000)
    assert "n1-arm" in site.engine.tracker.agents["PJSIP/1001"].memberships
    await page.screenshot(path=str(ARTIFACTS / "desk-bar-idle.png"))

    await page.keyboard.press("2")  # nothing to qualify yet: the bar says so
    await expect(page.locator("#message")).to_have_text("aucun appel à qualifier")

    caller = site.call("15", "0699887766", name="Durand")
    await expect(page.locator("#status")).to_have_text("sonne", timeout=5000)
    await page.screenshot(path=str(ARTIFACTS / "desk-bar-ringing.png"))
    await expect(page.locator("#card")).to_contain_text("0699887766", timeout=6000)
    await expect(page.locator("#card")).to_contain_text("n° démasqué")
    await expect(page.locator("#card")).to_contain_text("urgent")
    await expect(page.locator('[data-dest="P1"]')).to_have_text("→ n2-amu")
    await expect(page.locator('[data-dest="P0"]')).to_have_text("reste au poste")
    await page.screenshot(path=str(ARTIFACTS / "desk-bar-talking.png"))

    await page.keyboard.press("1")  # P1: to N2 AMU
    await expect(page.locator("#message")).to_have_text("qualification P1 : fait", timeout=5000)
    call = site.engine.tracker.calls[caller.uniqueid]
    await eventually(lambda: call.current_leg is not None and call.current_leg.queue == "n2-amu", what="AMU")
    assert call.qualification == "P1" and call.qualified_by == "lrm-1" and not caller.hungup
    await expect(page.locator("#card")).to_have_text("aucun appel", timeout=5000)
    await expect(page.locator("#day")).to_contain_text("1 appel traité")

    # Pause with a reason, resume, by key.
    await page.fill("#pause-reason", "brancard")
    await page.evaluate("document.activeElement.blur()")
    await page.keyboard.press("p")
    await expect(page.locator("#status")).to_have_text("en pause", timeout=5000)
    await page.keyboard.press("r")
    await expect(page.locator("#status")).to_have_text("libre", timeout=5000)

    # A 116 117 caller who needs the GP: transferred from the bar, keyboard only (T, choose, Tab, Enter).
    await site.login(site.desk("3001", answer_after=0.3), ["n2-mg"], "mrg", "Dr Morel")
    second = site.call("116117", "0677889900")
    await expect(page.locator("#card")).to_contain_text("0677889900", timeout=8000)
    await expect(page.locator("#card")).to_contain_text("soins non programmés")
    await page.keyboard.press("t")
    await page.keyboard.press("Home")
    for _ in range(2):  # N1, AMU, MG: two down
        await page.keyboard.press("ArrowDown")
    assert await page.locator("#transfer-to").input_value() == "n2-mg"
    await page.keyboard.press("Tab")
    await page.keyboard.press("Enter")
    await expect(page.locator("#message")).to_have_text("transfert vers n2-mg : fait", timeout=5000)
    moved = site.engine.tracker.calls[second.uniqueid]
    await eventually(lambda: moved.current_leg is not None and moved.current_leg.queue == "n2-mg", what="MG")
    assert not second.hungup

    # The bar acts only for its own desk: the engine refuses the others, and the bar says why.
    status, body = await site.post("/api/agents/pause", {"interface": "PJSIP/1002", "reason": "x"}, DESK_TOKEN)
    assert status == 403 and "not a desk of lrm-1" in body["error"]
    status, _ = await site.get("/api/desks/1002", DESK_TOKEN)
    assert status == 403

    # The engine goes away: the bar says the link is lost instead of showing stale figures.
    await site.live.stack.runner.cleanup()
    await expect(page.locator("#link")).to_have_text(re.compile("LIAISON PERDUE"), timeout=8000)


async def test_a_desk_token_opens_only_its_own_desk(browser: Browser, site: Site) -> None:  # noqa: F811
    page = await browser.new_page()
    await page.goto(f"{site.base_url}/desk#token={DESK_TOKEN}&desk=1002")
    await expect(page.locator("#token-error")).to_contain_text("refusé", timeout=5000)
    page = await browser.new_page()
    await page.goto(f"{site.base_url}/desk#token=not-a-valid-token-at-all")
    await expect(page.locator("#token-error")).to_contain_text("jeton refusé", timeout=5000)
