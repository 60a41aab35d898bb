"""The footer's unsubscribe link stays visible in Chromium whatever CSS the campaign brings."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from prefsvc.mail.rendering import SAMPLE, compile_variant, render
from tests.e2e.conftest import DESKTOP, PHONE

UNSUBSCRIBE = "https://news.example.org/u/TOKEN"
PREFERENCES = "https://news.example.org/p/TOKEN"
BODY = "<p>Beste {{ contact.first_name }}, nieuwe opleidingen!</p><div><p>Meer info</p></div>"


def styled(css: str, body: str = BODY, body_style: str = "", html_style: str = "") -> str:
    return (
        f'<!doctype html><html style="{html_style}"><head><style>{css}</style></head>'
        f'<body style="{body_style}">{body}</body></html>'
    )


ATTACKS = {
    "@media hides everything": styled("@media (min-width: 1px) { * { display: none !important } }"),
    "@media hides the last div": styled(
        "@media screen { body > div:last-child, body > div:last-of-type { display: none } }"
    ),
    "links hidden by attribute": styled("a[href*='/u/'] { display: none !important }"),
    "display none on body": styled("", body_style="display:none"),
    "visibility hidden": styled("body { visibility: hidden }"),
    "font-size 0": styled(
        "html, body { font-size: 0 !important; line-height: 0 } a:link { font-size: 0 }"
    ),
    "opacity 0": styled("", body_style="opacity:0", html_style="opacity:0"),
    "height 0 overflow hidden": styled("body { height: 0; overflow: hidden; max-height: 0 }"),
    "pushed off the page": styled(
        "body { position: absolute; left: -99999px; margin-top: -99999px }",
        body=BODY + '<p style="margin-bottom:-99999px">x</p>',
    ),
    "scaled to nothing": styled("@media all { body { transform: scale(0) } }"),
    "a white overlay on top": styled(
        "",
        body=BODY + '<div style="position:fixed;top:0;left:0;width:100%;height:100%;'
        'background:#fff;z-index:2147483647"></div>',
    ),
    "footer siblings": styled("body ~ div, div + div, div ~ div { display: none }"),
    "clipped": styled("@media (max-width: 5000px) { body { clip-path: inset(50%) } }"),
    "white on white": styled("body { color: #fff !important; background: #fff }"),
}


def rendered_html(source: str) -> str:
    variant = compile_variant(
        subject="Nieuws", html=source, text=None, language="nl", topic_name="Nieuws"
    )
    return render(
        variant, contact=SAMPLE, unsubscribe_url=UNSUBSCRIBE, preferences_url=PREFERENCES
    ).html


WHERE_AND_HOW = """(a) => {
  const r = a.getBoundingClientRect();
  const top = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
  let opacity = 1;
  for (let e = a; e; e = e.parentElement) opacity *= parseFloat(getComputedStyle(e).opacity);
  const style = getComputedStyle(a);
  return {width: r.width, height: r.height, left: r.left, top: r.top, opacity,
          onTop: top === a || a.contains(top), visibility: style.visibility,
          fontSize: parseFloat(style.fontSize), color: style.color};
}"""


@pytest.mark.parametrize("source", ATTACKS.values(), ids=ATTACKS.keys())
@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["360px", "1280px"])
def test_the_footers_unsubscribe_link_stays_visible(new_page, viewport, source):
    page = new_page(viewport=viewport)
    page.set_content(rendered_html(source))
    link = page.locator(f'a[href="{UNSUBSCRIBE}"]').last

    expect(link).to_be_visible()
    link.scroll_into_view_if_needed()
    seen = link.evaluate(WHERE_AND_HOW)
    assert seen["width"] > 20 and seen["height"] >= 10, seen
    assert 0 <= seen["left"] and seen["left"] + seen["width"] <= viewport["width"], seen
    assert 0 <= seen["top"] <= viewport["height"] - seen["height"], seen
    assert seen["onTop"], seen  # nothing covers it
    assert seen["opacity"] == 1 and seen["visibility"] == "visible", seen
    assert seen["fontSize"] >= 12, seen
    assert seen["color"] == "rgb(11, 61, 145)", seen


def test_an_ordinary_campaign_keeps_its_own_styles_and_media_rules(new_page):
    source = styled(
        "p { color: rgb(1, 2, 3) } @media (max-width: 600px) { p { color: rgb(4, 5, 6) } }"
    )
    html = rendered_html(source)
    phone, desktop = new_page(viewport=PHONE), new_page(viewport=DESKTOP)
    for page in (phone, desktop):
        page.set_content(html)
    colour = "(p) => getComputedStyle(p).color"
    assert phone.locator("p").first.evaluate(colour) == "rgb(4, 5, 6)"
    assert desktop.locator("p").first.evaluate(colour) == "rgb(1, 2, 3)"
