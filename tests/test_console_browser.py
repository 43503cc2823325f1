"""A real browser on the console: headless Chromium clicks from a bot to a conversation to a candidate list.

The browser is Debian's ``chromium`` (``.ci/run`` installs it), driven by Playwright through
its ``executable_path``: Playwright's own browser download is out of reach. The console serves
a DB the real jobs made with the demo model (tests/console_world.py). Screenshots go to
``tests/artifacts/console/`` (``$SSI_BOT_TEST_ARTIFACTS/console/`` when set), which CI keeps.
"""

import os
import re
import shutil
import sqlite3
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests import console_world
from tests.botworld import ROOT
from tests.console_world import BOT, EVIL, serve

CHROMIUM = os.environ.get("SSI_BOT_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("SSI_BOT_TEST_ARTIFACTS") or ROOT / "tests" / "artifacts") / "console"
# Headless, and nothing that would reach out: no QUIC, no sync, no component or field-trial downloads.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
DESKTOP, PHONE = {"width": 1280, "height": 900}, {"width": 390, "height": 844}


def posted_in_thread(world):
    con = sqlite3.connect(f"file:{world.db_path}?mode=ro", uri=True)
    try:
        return con.execute("SELECT COUNT(*) FROM item WHERE thread = ? AND state = 'posted'",
                           (world.post["name"],)).fetchone()[0]
    finally:
        con.close()


@pytest.fixture
def artifacts():
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    return ARTIFACTS


def test_a_browser_clicks_from_a_bot_to_a_conversation_to_its_candidates(sandbox, demo_model_dir, tmp_path,
                                                                         artifacts):
    from playwright.sync_api import expect, sync_playwright

    assert Path(CHROMIUM).is_file(), f"{CHROMIUM}: no Chromium; apt-get install chromium (.ci/run does)"
    world = console_world.build(tmp_path / "world", sandbox, demo_model_dir)
    question = world.question["name"]
    said = console_world.verdicts(world, question)        # the model's candidates vary from run to run
    assert said, "the bot generated for the question"
    with serve(world.config_path) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=FLAGS, viewport=DESKTOP)
        try:
            page = browser.pages[0] if browser.pages else browser.new_page()
            dialogs, errors, origins = [], [], set()
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on("request", lambda request: origins.add(urlsplit(request.url).netloc))

            page.goto(url)
            expect(page.locator("h1")).to_have_text("Bots")
            page.screenshot(path=artifacts / "1-bots.png", full_page=True)

            page.locator("main").get_by_role("link", name=BOT, exact=True).click()
            expect(page.locator("h1")).to_have_text(BOT)
            expect(page.get_by_text("per thread")).to_be_visible()
            page.screenshot(path=artifacts / "2-bot.png", full_page=True)

            page.locator("main").get_by_role("link", name="I finally fixed my bike").click()
            expect(page.locator("h1")).to_have_text("I finally fixed my bike")
            expect(page.get_by_text(EVIL, exact=True)).to_be_visible()      # markup shown as text
            answered = page.locator(f'[id="{question}"] > .self')
            answered.locator("summary").click()                              # the decision, rule by rule
            expect(answered.get_by_text("human author")).to_be_visible()
            expect(page.locator(".mine")).to_have_count(posted_in_thread(world))  # the bot's replies, highlighted
            page.screenshot(path=artifacts / "3-conversation.png", full_page=True)
            page.set_viewport_size(PHONE)
            page.screenshot(path=artifacts / "4-conversation-phone.png", full_page=True)
            page.set_viewport_size(DESKTOP)

            answered.get_by_role("link", name=re.compile(r"^\d+ candidates?$")).click()
            expect(page.get_by_role("heading", name=f"Candidates ({len(said)})")).to_be_visible()
            for n, verdict in enumerate(said):
                expect(page.locator(".candidate").nth(n)).to_contain_text(f"#{n + 1} {verdict}")
            page.screenshot(path=artifacts / "5-candidates.png", full_page=True)

            page.goto(f"{url}bots/{BOT}/items/{world.failed_item}")
            expect(page.get_by_text("rejected: negative keyword: grape")).to_be_visible()
            page.screenshot(path=artifacts / "6-rejected-candidates.png", full_page=True)
        finally:
            browser.close()
    assert dialogs == [] and errors == [], "no script ran"
    assert origins == {urlsplit(url).netloc}, f"the pages fetched nothing from elsewhere: {origins}"
    shots = sorted(p.name for p in artifacts.iterdir())
    assert len(shots) == 6 and all((artifacts / name).stat().st_size > 10_000 for name in shots), shots
