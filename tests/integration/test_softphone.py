"""A remote regulator's softphone in the browser, against the real Asterisk: headless Chromium with
its fake microphone loads the telephony bar, JsSIP (served by the engine) registers the WebRTC
desk over secure WebSocket, a SIP caller dials 15, the call rings in the browser, is answered from
the keyboard, qualified P1 from the bar and lands with an AMU desk phone — and the caller never
receives a BYE."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, expect
from sas_router.simulator.live import eventually

from tests.browser.test_dashboard import ARTIFACTS, chromium
from tests.integration.switches import RealSwitch, Room, open_room

#: A browser with a microphone that plays a tone, allowed without asking, which trusts the
#: test's self-signed certificate and may use loopback addresses for media (one machine).
WEBRTC_FLAGS = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                "--ignore-certificate-errors", "--allow-loopback-in-peer-connection",
                "--autoplay-policy=no-user-gesture-required"]
DESK = "6001"  # declared with the webrtc template in the Rhône's plan


@pytest.fixture
async def webrtc_browser() -> AsyncIterator[Browser]:
    async with chromium(*WEBRTC_FLAGS) as launched:
        yield launched


@pytest.fixture
async def room(real_rhone: RealSwitch) -> AsyncIterator[Room]:
    await real_rhone.reset()
    await real_rhone.open_trunk()
    opened = await open_room(real_rhone)
    yield opened
    await opened.close()
    await real_rhone.reset()


async def test_a_remote_regulator_answers_a_15_call_in_the_browser_and_qualifies_it_p1(
        webrtc_browser: Browser, room: Room) -> None:
    real = room.switch
    assert isinstance(real, RealSwitch) and real.host.https_port
    await room.desk("2001", ["n2-amu"], "mru")
    password = real.host.desk_password(DESK)
    page = await webrtc_browser.new_page(viewport={"width": 1280, "height": 800})
    page.on("console", lambda message: print("browser:", message.text) if message.type == "error" else None)
    await page.goto(f"{room.stack.base_url}/desk#token=desk-token&desk={DESK}&sip={password}&wss={real.host.wss_url}")
    await expect(page.locator("#softphone")).to_have_text("softphone enregistré", timeout=15000)

    await page.focus("#role")
    await page.keyboard.press("Home")
    await page.focus("#login")
    await page.keyboard.press("Enter")
    await expect(page.locator("#status")).to_have_text("libre", timeout=10000)

    leg = room.call("15", "0655443322", name="Leroy")
    call = await room.tracked(leg)
    await page.wait_for_function("() => window.sasSoftphone.ringing", timeout=15000)
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "softphone-ringing.png"))
    await page.evaluate("document.activeElement && document.activeElement.blur()")
    await page.keyboard.press("a")  # answer, from the keyboard
    await page.wait_for_function("() => window.sasSoftphone.inCall", timeout=15000)
    await room.talking_in(call, "n1-arm", timeout=15)
    assert call.current_leg is not None and call.current_leg.interface == f"PJSIP/{DESK}"
    await expect(page.locator("#card")).to_contain_text("0655443322", timeout=5000)
    await page.screenshot(path=str(ARTIFACTS / "softphone-talking.png"))

    await page.keyboard.press("1")  # P1: the caller goes to N2 AMU
    await expect(page.locator("#message")).to_have_text("qualification P1 : fait", timeout=10000)
    await room.talking_in(call, "n2-amu", timeout=15)
    await eventually(lambda: not page.is_closed(), what="page open")
    assert call.legs[0].interface == f"PJSIP/{DESK}" and call.legs[-1].member_name == "2001"
    assert not leg.dropped  # the caller's own SIP side never got a BYE
