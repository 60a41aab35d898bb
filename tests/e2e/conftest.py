"""Browser fixtures: the app served on a loopback port, Debian's Chromium driven by Playwright.

Playwright's own browser download cannot work here, so ``/usr/bin/chromium`` (Debian package
``chromium``, installed by ``make test``) is launched through ``executable_path``. axe-core comes
from npm (``package.json``, installed by ``make test``) and is injected into the page under test.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from prefsvc.settings import SETTINGS_KEY

CHROMIUM = Path("/usr/bin/chromium")
AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 900}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.browser)


@pytest.fixture
def live_server(app, settings) -> Iterator[str]:
    """Serve the test app on a free loopback port; return its base URL.

    The app's settings get this server as ``base_url``, so links in mail sent from now on open
    here.
    """
    server = make_server("127.0.0.1", 0, app, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    app.extensions[SETTINGS_KEY] = settings.with_(base_url=base)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield base
    server.shutdown()
    thread.join(timeout=5)
    app.extensions[SETTINGS_KEY] = settings


@pytest.fixture(scope="session")
def browser():
    """One headless Debian Chromium per test process."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is not installed (make test installs it)", pytrace=False)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def new_page(browser) -> Iterator[Callable[..., object]]:
    """Return a function opening a page in a fresh context of the given viewport and locale."""
    contexts = []

    def open_page(viewport: dict[str, int] = DESKTOP, locale: str = "nl-BE"):
        context = browser.new_context(viewport=viewport, locale=locale, java_script_enabled=True)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture(scope="session")
def axe_source() -> str:
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: npm ci (make test) installs axe-core", pytrace=False)
    return AXE.read_text(encoding="utf-8")


@pytest.fixture
def axe(axe_source) -> Callable[[object], list[dict]]:
    """Return a function that runs axe-core on a page and returns serious/critical violations."""

    def run(page) -> list[dict]:
        # evaluate() runs through DevTools, so the page's CSP (script-src 'self') stays on
        page.evaluate(axe_source)
        result = page.evaluate("async () => await axe.run(document)")
        return [
            {
                "id": v["id"],
                "impact": v["impact"],
                "help": v["help"],
                "nodes": [n["target"] for n in v["nodes"]][:5],
            }
            for v in result["violations"]
            if v["impact"] in ("serious", "critical")
        ]

    return run


def fits_and_passes_axe(page, axe, viewport: dict[str, int]) -> None:
    """At this width the page does not scroll sideways and axe finds nothing serious.

    Waits first for the load of a navigation a click may have started: read right after it,
    the new document can be committed but not yet parsed (``documentElement`` is null)."""
    page.wait_for_load_state()
    page.set_viewport_size(viewport)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= viewport["width"], (page.url, viewport, width)
    assert axe(page) == [], (page.url, viewport)
