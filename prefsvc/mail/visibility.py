"""Keep our footer visible whatever CSS a campaign brings: scope its styles to its own content.

Our footer (unsubscribe and preference links) is appended after the campaign's content, inside
the same ``<body>``, so a campaign's CSS could hide it: ``@media`` or pseudo-class rules that
premailer cannot inline (``* {display:none}``, ``body > div:last-child {...}``), styles on
``<body>`` or ``<html>`` the footer inherits (``font-size:0``, ``opacity:0``,
``height:0;overflow:hidden``, ``visibility:hidden``), or a positioned overlay over it.

Rather than guess every property that can hide something, the campaign's CSS is kept away from
the footer: its content is wrapped in ``<div class="prefsvc-content">``, the ``<body>``'s and
``<html>``'s own styles move onto that wrapper, and every rule left in a ``<style>`` block is
rewritten to match only inside the wrapper (``@media`` rules included; ``@import`` and other
at-rules are dropped, as are ``<link>`` stylesheets). Sibling selectors that could reach past
the wrapper are dropped. The footer itself sits above any overlay (``FOOTER_STYLE``). Template
code inside ``<style>`` is refused: it would write CSS we never saw.
"""

from __future__ import annotations

import logging
import re

import cssutils
import lxml.html
from lxml import etree

from prefsvc.errors import InvalidInput

SCOPE_CLASS = "prefsvc-content"
SCOPE = f".{SCOPE_CLASS}"
# On the footer's own element: above any positioned overlay (a tie in z-index goes to the later
# element, and the footer is last), and none of what it could inherit from a wrapper.
FOOTER_STYLE = (
    "display:block !important;visibility:visible !important;opacity:1 !important;"
    "position:relative !important;z-index:2147483647 !important;clear:both !important;"
    "float:none !important;transform:none !important;height:auto !important;"
    "max-height:none !important;overflow:visible !important;background:#ffffff !important;"
    "font-size:13px !important;text-indent:0 !important;clip-path:none !important"
)
# Appended to the wrapper's style (the body's, moved): inline !important wins over any sheet, and
# later declarations over earlier ones, so the wrapper cannot pull the footer off the page
# (negative margins) nor let its content's margins reach past it (a new formatting context).
WRAPPER_STYLE = (
    "display:flow-root !important;margin:0 !important;position:static !important;"
    "float:none !important"
)
_LEADING_ROOT = re.compile(r"^\s*(?::root|html)(?=$|[\s>+~.#:\[])")
_LEADING_BODY = re.compile(r"^\s*body(?=$|[\s>+~.#:\[])")
_SIBLING_NEXT = re.compile(r"^\s*[~+]")
_KEPT_AT_RULES = (cssutils.css.CSSFontFaceRule, cssutils.css.CSSComment)
_MOVED_BODY_ATTRIBUTES = ("style", "class", "id", "text", "link", "vlink", "alink", "background")

cssutils.log.setLevel(logging.CRITICAL)
cssutils.ser.prefs.useMinified()


def scoped_selector(selector: str) -> str | None:
    """Return ``selector`` made to match only inside the content wrapper, or None to drop it."""
    rest = _LEADING_ROOT.sub("", selector).strip().lstrip(">").strip()
    if _SIBLING_NEXT.match(rest):
        return None
    if _LEADING_BODY.match(rest):
        rest = _LEADING_BODY.sub("", rest, count=1)
        if "~" in rest or "+" in rest:
            return None  # "body.x ~ div" would reach the wrapper's sibling: the footer
        return SCOPE + rest  # "body.x p" -> ".prefsvc-content.x p": the body's class moved
    return f"{SCOPE} {rest}".rstrip()


def scoped_css(text: str) -> str:
    """Rewrite a style sheet so that none of its rules can match outside the content wrapper."""
    sheet = cssutils.parseString(text, validate=False)
    _scope_rules(sheet)
    return sheet.cssText.decode("utf-8")


def _scope_rules(parent) -> None:
    """Scope the style rules of a sheet or ``@media`` rule; delete what is not kept."""
    doomed = []
    for rule in parent.cssRules:
        if isinstance(rule, cssutils.css.CSSStyleRule):
            kept = [s for s in map(scoped_selector, _selectors(rule)) if s]
            if kept:
                rule.selectorText = ", ".join(kept)
            else:
                doomed.append(rule)
        elif isinstance(rule, cssutils.css.CSSMediaRule):
            _scope_rules(rule)
        elif not isinstance(rule, _KEPT_AT_RULES):
            doomed.append(rule)
    for rule in doomed:
        parent.deleteRule(list(parent.cssRules).index(rule))


def _selectors(rule) -> list[str]:
    return [selector.selectorText for selector in rule.selectorList]


def keep_footer_visible(html: str, *, template_code: re.Pattern[str]) -> str:
    """Wrap the content, move the body's styles onto the wrapper and scope every style sheet.

    ``template_code`` matches the stand-ins of template syntax (see ``rendering._protect``):
    found inside a ``<style>`` block, the HTML is refused.
    """
    document = lxml.html.document_fromstring(html)
    for link in document.xpath("//link[@rel]"):
        if "stylesheet" in link.get("rel", "").lower():
            link.drop_tree()
    for style in document.xpath("//style"):
        css = style.text or ""
        if template_code.search(css):
            raise InvalidInput(
                "html", "template code inside <style> is not allowed (it could hide the footer)"
            )
        style.text = scoped_css(css)
    for attribute in ("style", "class", "id"):
        document.attrib.pop(attribute, None)
    body = document.find("body")
    if body is None:  # pragma: no cover - lxml always makes one
        return html
    wrapper = etree.Element("div")
    for attribute in _MOVED_BODY_ATTRIBUTES:
        if attribute in body.attrib:
            value = body.attrib.pop(attribute)
            if attribute == "class":
                wrapper.set("class", f"{SCOPE_CLASS} {value}")
            elif attribute in ("style", "id"):
                wrapper.set(attribute, value)
    wrapper.set("class", wrapper.get("class", SCOPE_CLASS))
    own = wrapper.get("style", "").strip().rstrip(";")
    wrapper.set("style", f"{own};{WRAPPER_STYLE}" if own else WRAPPER_STYLE)
    wrapper.text, body.text = body.text, None
    for child in list(body):
        wrapper.append(child)
    body.append(wrapper)
    return lxml.html.tostring(document, encoding="unicode", doctype=_doctype(html))


def _doctype(html: str) -> str:
    match = re.match(r"\s*(<!doctype[^>]*>)", html, re.I)
    return match.group(1) if match else "<!DOCTYPE html>"
