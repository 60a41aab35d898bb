"""The campaign's CSS is scoped to its own content, so it cannot reach our footer."""

from __future__ import annotations

import pytest

from prefsvc.errors import InvalidFields
from prefsvc.mail.rendering import compile_variant, inline_css
from prefsvc.mail.visibility import scoped_css, scoped_selector


@pytest.mark.parametrize(
    ("selector", "scoped"),
    [
        ("*", ".prefsvc-content *"),
        ("body", ".prefsvc-content"),
        ("html body p", ".prefsvc-content p"),
        (":root", ".prefsvc-content"),
        ("body > div:last-child", ".prefsvc-content > div:last-child"),
        ("body.dark a", ".prefsvc-content.dark a"),
        (".x + .y", ".prefsvc-content .x + .y"),
        ("body ~ div", None),
        ("body.x + div", None),
    ],
)
def test_a_selector_matches_only_inside_the_content(selector, scoped):
    assert scoped_selector(selector) == scoped


def test_media_rules_are_scoped_and_imports_dropped():
    css = scoped_css(
        "@import url(https://evil.example/x.css); "
        "@media (max-width: 600px) { * { display: none } } a:hover { color: blue }"
    )
    assert "@import" not in css
    assert "@media (max-width:600px){.prefsvc-content *{display:none}}" in css
    assert ".prefsvc-content a:hover{color:blue}" in css


def test_the_bodys_own_styles_move_onto_the_content_wrapper():
    html = inline_css(
        '<html style="opacity:0"><head><link rel="stylesheet" href="https://x/y.css">'
        '</head><body style="display:none"><p>Hi {{ contact.first_name }}</p></body></html>'
    )
    assert '<body><div style="display:none;' in html
    assert "opacity" not in html and "<link" not in html
    assert "{{ contact.first_name }}" in html


def test_template_code_inside_a_style_block_is_refused():
    with pytest.raises(InvalidFields) as caught:
        compile_variant(
            subject="S",
            html="<style>a:hover { color: {{ contact.first_name }} }</style><p>x</p>",
            text=None,
            language="nl",
            topic_name="News",
        )
    assert "inside <style>" in caught.value.fields["html"][0]
