"""The API docs in a real browser: readable, every route shown, nothing blocked by the CSP."""

from __future__ import annotations

import os

from tests.e2e.conftest import DESKTOP

SCREENSHOTS = os.environ.get("PREFSVC_SCREENSHOTS")


def _shoot(page, name: str) -> None:
    if SCREENSHOTS:
        page.screenshot(path=f"{SCREENSHOTS}/{name}.png", full_page=False)


def _watch(page) -> list[str]:
    """Collect script errors, CSP violations and failed loads (the browser's favicon aside)."""
    problems: list[str] = []

    def console(message) -> None:
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            problems.append(message.text)

    def response(answer) -> None:
        if answer.status >= 400 and not answer.url.endswith("/favicon.ico"):
            problems.append(f"{answer.status} {answer.url}")

    page.on("console", console)
    page.on("response", response)
    page.on("pageerror", lambda e: problems.append(str(e)))
    return problems


def test_the_docs_page_is_accessible_and_lists_every_route(live_server, new_page, axe, client):
    spec = client.get("/api/v1/openapi.json").get_json()
    page = new_page(viewport=DESKTOP, locale="en-BE")
    problems = _watch(page)
    assert page.goto(f"{live_server}/api/v1/docs").status == 200
    links = page.locator("nav a code").all_inner_texts()
    expected = [
        f"{method.upper()} {path}"
        for path, item in spec["paths"].items()
        for method in ("get", "post", "put", "patch", "delete")
        if method in item
    ]
    assert links == expected
    _shoot(page, "api-docs")
    assert axe(page) == []
    assert problems == []


def test_the_docs_page_renders_markdown_and_uses_the_width_at_1280_px(live_server, new_page):
    page = new_page(viewport=DESKTOP, locale="en-BE")
    page.goto(f"{live_server}/api/v1/docs")
    intro = page.locator("main > p").first
    assert intro.locator("code").first.inner_text() == "Authorization: Bearer <key>"
    assert "`" not in intro.inner_text()
    main_width = page.locator("main").bounding_box()["width"]
    assert main_width >= 1000
    table = page.locator("table.api-table").first.bounding_box()["width"]
    assert table >= main_width - 100  # the tables span the column
    assert page.evaluate("document.documentElement.scrollWidth") <= DESKTOP["width"]


def test_swagger_ui_runs_from_local_files_under_the_strict_csp(live_server, new_page, client):
    spec = client.get("/api/v1/openapi.json").get_json()
    page = new_page(viewport=DESKTOP, locale="en-BE")
    problems = _watch(page)
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    assert page.goto(f"{live_server}/api/v1/docs/try").status == 200
    page.locator(".opblock").first.wait_for(timeout=15_000)
    shown = {
        (m.strip().upper(), p.strip().replace("\u200b", ""))
        for m, p in zip(
            page.locator(".opblock-summary-method").all_inner_texts(),
            page.locator(".opblock-summary-path").all_inner_texts(),
            strict=True,
        )
    }
    expected = {
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method in ("get", "post", "put", "patch", "delete")
        if method in item
    }
    assert shown == expected
    _shoot(page, "api-swagger")
    assert problems == []
    assert all(url.startswith(live_server) or url.startswith("data:") for url in requested)


def test_swagger_ui_calls_the_api_with_a_pasted_key(live_server, new_page, session, clock):
    from prefsvc.access import apikeys
    from tests.factories import make_topic

    make_topic(session, "nieuws", "Nieuws")
    _, key = apikeys.create(session, "browser", "marketing", now=clock())
    session.commit()
    page = new_page(viewport=DESKTOP, locale="en-BE")
    problems = _watch(page)
    page.goto(f"{live_server}/api/v1/docs/try")
    page.locator("button.authorize").first.click()
    page.locator(".auth-container input").fill(key)
    page.locator(".auth-btn-wrapper button.authorize").click()
    page.locator(".auth-btn-wrapper button.btn-done").click()

    operation = page.locator(".opblock-get").filter(has_text="List every topic.")
    operation.locator(".opblock-summary").click()
    operation.locator("button.try-out__btn").click()
    operation.locator("button.execute").click()
    status = operation.locator(".live-responses-table tbody .response-col_status").first
    status.wait_for(timeout=15_000)
    assert status.inner_text().strip() == "200"
    assert "nieuws" in operation.locator(".live-responses-table").inner_text()
    _shoot(page, "api-swagger-try")
    assert problems == []
