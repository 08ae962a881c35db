"""The browser console in real headless Chromium (Debian's `chromium`, driven by Playwright): a call by keypad,
by an uploaded WAV file and by the microphone (Chromium's fake capture device playing a WAV), in-process
against the embedded demo bot, with the API key on.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, Page, async_playwright, expect

from adapter.speech.settings import REPO_ROOT

from .conftest import API_KEY, door_settings, run, running

CHROMIUM = Path("/usr/bin/chromium")
# Waits for the page to show something (speech recognition and prompts take seconds), not timing asserts.
WAIT_MS = 20_000


@pytest.fixture
async def service() -> AsyncIterator[TestClient]:
    async with running(door_settings(KORE_VOICE_API_KEY=API_KEY)) as client:
        yield client


@pytest.fixture(scope="module")
def microphone_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the fake microphone says, over and over: "check my balance" and a second of silence."""
    out = tmp_path_factory.mktemp("console") / "microphone.wav"
    run("sox", REPO_ROOT / "samples" / "check_my_balance_16k.wav", out, "pad", "0", "1")
    return out


@pytest.fixture
async def browser(microphone_wav: Path) -> AsyncIterator[Browser]:
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: `make system` installs it (apt package chromium)"
    args = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream", f"--use-file-for-fake-audio-capture={microphone_wav}",
            "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=args)
        yield chromium
        await chromium.close()


async def open_call(browser: Browser, service: TestClient) -> Page:
    """The console, its call started and the bot's welcome shown."""
    page = await browser.new_page()
    await page.goto(str(service.make_url(f"/console?key={API_KEY}")))
    await page.click("#start")
    await expect(page.locator("#log .bot")).to_have_text(
        ["Bot: Welcome to Demo Bank.", "Bot: How can I help you today?",
         "Menu: 1 Check balance · 2 Transfer money · 3 Talk to an agent"], timeout=WAIT_MS)
    return page


async def test_the_page_is_public_and_the_stream_still_needs_the_key(service: TestClient):
    page = await service.get("/console")
    assert (page.status, page.content_type) == (200, "text/html")
    assert "<title>kore-voice console</title>" in await page.text()
    assert (await service.post("/v1/calls", json={"from": "+1", "to": "+2"})).status == 401
    assert (await service.get("/v1/stream")).status == 401


async def test_the_front_door_points_browsers_to_the_console_and_programs_to_the_docs(service: TestClient):
    index = await service.get("/")
    assert (index.status, index.content_type) == (200, "application/json")
    assert {k: v for k, v in (await index.json()).items() if k in ("console", "openapi")} == {
        "console": "/console", "openapi": "/openapi.json"}
    browser = await service.get(f"/?key={API_KEY}", headers={"Accept": "text/html,*/*;q=0.8"}, allow_redirects=False)
    assert (browser.status, browser.headers["Location"]) == (302, f"/console?key={API_KEY}")
    assert (await service.get("/favicon.ico")).status == 204


async def test_a_refused_stream_shows_its_reason(browser: Browser, service: TestClient):
    page = await browser.new_page()
    await page.goto(str(service.make_url("/console")))  # no ?key=
    await page.click("#start")
    await expect(page.locator("#log .sys")).to_have_text(re.compile(
        r"Call refused: 401 unauthorized: missing or wrong API key.*open this page as /console\?key=YOUR_KEY"),
        timeout=WAIT_MS)
    await expect(page.locator("#status")).to_have_text("refused")
    assert await page.locator("#start").is_enabled()


async def test_a_call_by_keypad_and_wav_file(browser: Browser, service: TestClient):
    page = await open_call(browser, service)
    missing = []
    page.on("response", lambda response: response.status >= 400 and missing.append(response.url))
    await expect(page.locator("#played")).not_to_have_text("0", timeout=WAIT_MS)

    await page.click("#keypad button[data-key='1']")
    await expect(page.locator("#log .transcript").last).to_have_text("You (dtmf): balance", timeout=WAIT_MS)
    await expect(page.locator("#log .bot", has_text="$2,450.18")).to_have_text(
        "Bot: Your checking account balance is $2,450.18.", timeout=WAIT_MS)

    await page.set_input_files("#wav", REPO_ROOT / "samples" / "check_my_balance_16k.wav")
    await page.click("#send-wav")
    await expect(page.locator("#log .transcript").last).to_have_text("You (speech): check my balance",
                                                                     timeout=WAIT_MS)
    await expect(page.locator("#log .bot", has_text="$2,450.18")).to_have_count(2, timeout=WAIT_MS)

    await page.click("#hangup")
    await expect(page.locator("#status")).to_have_text("ended", timeout=WAIT_MS)
    await expect(page.locator("#log .sys").last).to_have_text("You hung up.")
    assert await page.locator("#start").is_enabled()
    assert missing == []


async def test_the_page_asks_for_nothing_that_is_not_there(browser: Browser, service: TestClient):
    page = await browser.new_page()
    failed = []
    page.on("response", lambda response: response.status >= 400 and failed.append(response.url))
    await page.goto(str(service.make_url(f"/?key={API_KEY}")))  # the front door sends a browser to the console
    await expect(page).to_have_title("kore-voice console")
    await page.wait_for_load_state("networkidle")
    assert failed == []


async def test_the_microphone_is_heard(browser: Browser, service: TestClient):
    page = await open_call(browser, service)
    await page.click("#mic")
    # The fake device loops its file from wherever capture begins: the first words may be clipped.
    await expect(page.locator("#log .transcript").first).to_have_text(
        re.compile(r"You \(speech\): check (my )?balance"), timeout=WAIT_MS)
    await expect(page.locator("#log .bot", has_text="$2,450.18").first).to_have_text(
        "Bot: Your checking account balance is $2,450.18.", timeout=WAIT_MS)
