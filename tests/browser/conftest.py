"""Browser-test fixtures: the app served by waitress (the production server) on a free local
port against the test database, and a headless Chromium page that saves a screenshot into
``test-artifacts/`` when its test fails.

``live_server`` is reusable by any browser test::

    def test_x(live_server, browser_page, make_user):
        live_server.login(browser_page, make_user("caseworker").username)
"""
from __future__ import annotations

import re
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@dataclass
class LiveServer:
    url: str
    app: object

    def login(self, page, username: str, password: str = "correct horse battery") -> None:  # noqa: S107
        """Sign in through the login form (default: the password ``make_user`` gives)."""
        page.goto(f"{self.url}/login")
        page.fill('input[name="username"]', username)
        page.fill('input[name="password"]', password)
        page.click('button[type="submit"]')
        page.wait_for_load_state()


@pytest.fixture
def live_server(app):
    """The test app served by waitress in a background thread on 127.0.0.1:<free port>."""
    from waitress.server import create_server

    server = create_server(app, host="127.0.0.1", port=0, threads=4, ident="rso-test")
    url = f"http://127.0.0.1:{server.effective_port}"
    stopping = threading.Event()

    def serve():
        try:
            server.run()
        except OSError:  # the loop was in select() on a socket closed below to stop it
            if not stopping.is_set():
                raise

    thread = threading.Thread(target=serve, name="live-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while True:
        try:
            with urllib.request.urlopen(f"{url}/login", timeout=1) as resp:  # noqa: S310 - local test server
                if resp.status == 200:
                    break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    yield LiveServer(url, app)
    stopping.set()
    server.task_dispatcher.shutdown(timeout=5)
    for channel in list(server._map.values()):
        channel.close()
    thread.join(timeout=5)


@pytest.fixture(scope="session")
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
def browser_page(chromium, request):
    """A fresh browser context and page; a failing test leaves a screenshot in test-artifacts/."""
    context = chromium.new_context(viewport={"width": 1280, "height": 1000}, locale="en-GB")
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)[-120:]
        try:
            page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
            (ARTIFACTS / f"{name}.html").write_text(page.content())
        except Exception as exc:  # a failed screenshot must not hide the test's failure
            print(f"screenshot failed: {exc}")
    context.close()
