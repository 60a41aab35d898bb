"""The house layout: Markdown (or HTML) content made into a campaign's HTML template source.

A campaign written in Markdown is turned into HTML once per variant (markdown-it-py, CommonMark
plus tables, raw HTML off so no stray ``<!--`` can hide our footer) and put into
``templates/mail/house.html``: a 600 px centred column that narrows to the screen, the
sender's name, postal address and privacy statement, the variant's ``lang`` and a ``<title>``.
Jinja2 syntax is swapped for placeholders while Markdown and our layout run, so ``{{ … }}``
stays a template for ``rendering.compile_variant`` (sandboxed, CSS inlined, footer appended).
A preheader, the hidden preview line mail clients show after the subject, goes first in the
body, in either format.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import jinja2
from jinja2.sandbox import SandboxedEnvironment
from markdown_it import MarkdownIt
from markupsafe import Markup, escape

from prefsvc.errors import InvalidInput
from prefsvc.mail import rendering
from prefsvc.mail.limits import Limits
from prefsvc.models import ContentFormat

# Pads the preview after the preheader so clients do not fill it with the first lines of the body.
PREVIEW_SPACER = "&#847;&zwnj;&nbsp;" * 40
BODY_START = re.compile(r"<body\b[^>]*>", re.I)
PREHEADER_STYLE = (
    "display:none;font-size:1px;line-height:1px;max-height:0;max-width:0;opacity:0;"
    "overflow:hidden;mso-hide:all"
)
_BODY, _TITLE, _PREHEADER = "PREFSVCBODYX", "PREFSVCTITLEX", "PREFSVCPREHEADERX"


@dataclass(frozen=True)
class Identity:
    """Who is writing, as the house layout and the recipient pages show it."""

    name: str
    address: str
    privacy_url: str
    logo_url: str | None = None

    @classmethod
    def from_settings(cls, settings) -> Identity:
        return cls(
            name=settings.organisation_name,
            address=settings.organisation_address,
            privacy_url=settings.privacy_url,
            logo_url=settings.logo_url,
        )


# What a campaign is checked against when it is saved (the layout does not depend on it).
SAMPLE_IDENTITY = Identity(
    name="Sample organisation", address="Sample street 1", privacy_url="https://x/privacy"
)


@lru_cache(maxsize=1)
def _parser() -> SandboxedEnvironment:
    """Parse only (the preheader is compiled, with its limits, as part of the HTML)."""
    return SandboxedEnvironment(autoescape=True)


@lru_cache(maxsize=1)
def _markdown() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False, "typographer": False}).enable("table")


def markdown_html(source: str) -> str:
    """Return the HTML of Markdown ``source``, its Jinja2 syntax kept as it was written."""
    protected, saved = rendering._protect(source)
    return rendering._restore(_markdown().render(protected), saved)


def _escaped_template(source: str) -> str:
    """Escape the text of a one-line template for HTML, leaving its ``{{ … }}`` as written."""
    parts: list[str] = []
    last = 0
    for match in rendering.JINJA_SYNTAX.finditer(source):
        parts.append(str(escape(source[last : match.start()])))
        parts.append(match.group(0))
        last = match.end()
    parts.append(str(escape(source[last:])))
    return " ".join("".join(parts).split())


def _no_jinja(value: str) -> Markup:
    """Escape a setting's text so that it shows as written, never as template syntax.

    Entities would not do: premailer decodes them before Jinja2 reads the template.
    """
    text = str(escape(value))
    if rendering.JINJA_SYNTAX.search(text) or "{" in text:
        text = "{% raw %}" + text.replace("endraw", "end raw") + "{% endraw %}"
    return Markup(text)


def house_html(
    body_html: str, *, language: str, subject: str, preheader: str | None, identity: Identity
) -> str:
    """Put a body (HTML with Jinja2 syntax) into the house layout, in ``language``."""
    env = rendering.trusted_environment("mail", language)
    frame = env.get_template("house.html").render(
        lang=language,
        preheader=bool(preheader),
        spacer=Markup(PREVIEW_SPACER),
        identity={
            "name": _no_jinja(identity.name),
            "address": _no_jinja(identity.address),
            "privacy_url": _no_jinja(identity.privacy_url),
            "logo_url": _no_jinja(identity.logo_url) if identity.logo_url else None,
        },
    )
    return (
        frame.replace(_TITLE, _escaped_template(subject))
        .replace(_PREHEADER, _escaped_template(preheader or ""))
        .replace(_BODY, body_html)
    )


def with_preheader(html: str, preheader: str | None) -> str:
    """Return raw campaign HTML with the hidden preheader first in its body (if it has one)."""
    if not preheader or not preheader.strip():
        return html
    block = (
        f'<div class="preheader" style="{PREHEADER_STYLE}">'
        f"{_escaped_template(preheader)}{PREVIEW_SPACER}</div>"
    )
    found = BODY_START.search(html)
    if found is None:
        return block + html
    return html[: found.end()] + "\n" + block + html[found.end() :]


def sources(
    *,
    content_format: ContentFormat | str,
    subject: str,
    content: str,
    text: str | None,
    preheader: str | None,
    language: str,
    identity: Identity,
) -> tuple[str, str | None]:
    """Return the HTML and text template sources a variant is compiled from.

    The text part is derived from the content alone (never the hidden preheader or the
    layout's chrome); for Markdown it ends with who is writing, as the HTML does.
    """
    _check_preheader(preheader)
    if ContentFormat(content_format) is ContentFormat.HTML:
        derived = text if text is not None else rendering.text_from_html(content)
        return with_preheader(content, preheader), derived
    body = markdown_html(content)
    html = house_html(
        body, language=language, subject=subject, preheader=preheader, identity=identity
    )
    if text is None:
        text = rendering.text_from_html(body).rstrip("\n") + "\n\n" + identity_text(identity)
    return html, text


def identity_text(identity: Identity) -> str:
    """Who is writing, for a text part: name, postal address, privacy statement."""
    lines = [identity.name, identity.address, identity.privacy_url]
    return "\n".join(line.replace("{", "(").replace("}", ")") for line in lines) + "\n"


def _check_preheader(preheader: str | None) -> None:
    """Report a broken preheader under its own name, not as an error in the HTML."""
    if not preheader:
        return
    try:
        _parser().parse(preheader)
    except jinja2.TemplateSyntaxError as exc:
        raise InvalidInput(
            "preheader", f"template error on line {exc.lineno}: {exc.message}"
        ) from None


def compile_variant(
    *,
    content_format: ContentFormat | str,
    subject: str,
    content: str,
    text: str | None,
    preheader: str | None,
    language: str,
    topic_name: str,
    identity: Identity,
    bounds: Limits = rendering.DEFAULT_LIMITS,
    rewrite_links: Callable[[str], str] | None = None,
) -> rendering.CompiledVariant:
    """Compile a variant written in either format (``rendering.compile_variant`` does the rest,
    under ``bounds`` and with ``rewrite_links``)."""
    html, text_source = sources(
        content_format=content_format,
        subject=subject,
        content=content,
        text=text,
        preheader=preheader,
        language=language,
        identity=identity,
    )
    return rendering.compile_variant(
        subject=subject,
        html=html,
        text=text_source,
        language=language,
        topic_name=topic_name,
        bounds=bounds,
        rewrite_links=rewrite_links,
    )
