"""/docs renders in a real headless Chromium with every request to another origin blocked:
its script and style come from the service itself (the fastapi-offline package), never a CDN."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
WAIT_MS = 60_000


@pytest.fixture(scope="module")
def offline_page(server):
    """A page whose every request outside the server's origin is aborted, and recorded."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Chromium is not installed (apt-get install -y --no-install-recommends chromium)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, timeout=60_000,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        try:
            page = browser.new_page()
            page.outside = []
            page.errors = []

            def only_the_server(route):
                if route.request.url.startswith(server.url + "/"):
                    route.continue_()
                else:
                    page.outside.append(route.request.url)
                    route.abort()

            page.route("**/*", only_the_server)
            page.on("pageerror", lambda e: page.errors.append(str(e)))
            yield page
        finally:
            browser.close()


def test_swagger_ui_renders_offline(server, offline_page):
    page = offline_page
    page.goto(server.url + "/docs", timeout=WAIT_MS)
    page.wait_for_selector(".swagger-ui .opblock-summary-path", timeout=WAIT_MS)
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert any("/v1/sketch" in p for p in paths) and any("/healthz" in p for p in paths), paths
    assert page.outside == [] and page.errors == []

