"""Campaign templates: compiled once per variant, rendered per recipient with a fixed footer.

premailer inlines the CSS once per variant, on the template source itself. Jinja2 syntax is
swapped for opaque placeholders first and restored afterwards: lxml would otherwise URL-escape
``href="{{ url }}"`` into ``{{%20url%20}}`` or move block tags. The footer with the
unsubscribe and preference links is ours, appended after the campaign's own content so no
template can leave it out, and in the recipient's own language whatever the variant's: footers
are rendered once per (language, topic name) and process (``compile_footer``, cached by
``mail.kit``), and delivery hands ``render`` the reader's.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jinja2
import lxml.html
from babel.support import Translations
from jinja2 import nodes
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import escape
from premailer import Premailer

from prefsvc.errors import InvalidFields, InvalidInput
from prefsvc.mail import limits, visibility
from prefsvc.mail.limits import Limits, TemplateTooCostly
from prefsvc.resources import PACKAGE_DIR, resource_dir

log = logging.getLogger(__name__)
JINJA_SYNTAX = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)
PLACEHOLDER = "PREFSVCJ{}X"
PLACEHOLDER_RE = re.compile(r"PREFSVCJ(\d+)X")
BLANK_RUNS = re.compile(r"\n{3,}")
BODY_END = re.compile(r"</body\s*>", re.I)
BLOCKS = {
    "p",
    "div",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "li",
    "tr",
    "table",
    "ul",
    "ol",
    "blockquote",
    "section",
    "article",
    "header",
    "footer",
}


@dataclass(frozen=True)
class RecipientContext:
    """What a campaign template may see about a person, as ``contact``."""

    email: str
    first_name: str | None
    last_name: str | None
    organisation: str | None
    language: str


@dataclass(frozen=True)
class Rendered:
    subject: str
    html: str
    text: str


@dataclass(frozen=True)
class Footer:
    """Our footer in one language, rendered once with stand-ins for the two links.

    Rendering it per recipient was a tenth of a worker's CPU. See ``_fill_footer``.
    """

    html: str
    text: str


@dataclass(frozen=True)
class CompiledVariant:
    """A campaign variant ready to render: CSS inlined, templates compiled, footer chosen."""

    language: str
    topic_name: str
    subject: jinja2.Template
    html: jinja2.Template
    text: jinja2.Template
    # The footer in the variant's language; delivery passes the reader's own (``render``).
    footer: Footer


SAMPLE = RecipientContext(
    email="sample@example.org",
    first_name="Sam",
    last_name="Sample",
    organisation="Org",
    language="nl",
)

DEFAULT_LIMITS = Limits()


@lru_cache(maxsize=4)
def _sandboxes(bounds: Limits) -> tuple[SandboxedEnvironment, SandboxedEnvironment]:
    """Return the sandboxes for marketing templates, HTML (escaped) and text, under ``bounds``."""
    return limits.environments(bounds)


@lru_cache(maxsize=8)
def catalog(language: str) -> Translations:
    """Return one language's message catalog, for mail rendered outside a request."""
    return Translations.load(str(PACKAGE_DIR / "translations"), [language])


def trusted_environment(folder: str, language: str, **options: Any) -> jinja2.Environment:
    """Return an environment for our own (trusted) templates in ``templates/<folder>``.

    Unlike the sandboxes for marketing templates: HTML autoescaped, gettext from the catalog
    of ``language`` (footers and notices are rendered by workers, outside any request).
    """
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(resource_dir("templates") / folder)),
        autoescape=jinja2.select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
        **options,
    )
    env.install_gettext_translations(catalog(language), newstyle=True)
    return env


@lru_cache(maxsize=8)
def _footer_env(language: str) -> jinja2.Environment:
    """Return our own (trusted) environment for the footer, with this language's catalog."""
    return trusted_environment("mail", language)


def _protect(source: str) -> tuple[str, list[str]]:
    saved: list[str] = []

    def swap(match: re.Match[str]) -> str:
        saved.append(match.group(0))
        return PLACEHOLDER.format(len(saved) - 1)

    return JINJA_SYNTAX.sub(swap, source), saved


def _restore(text: str, saved: list[str]) -> str:
    return PLACEHOLDER_RE.sub(lambda m: saved[int(m.group(1))], text)


def inline_css(html: str) -> str:
    """Inline the CSS of a Jinja2 HTML template, keeping its template syntax intact.

    What cannot be inlined (``@media``, ``:hover``...) is scoped to the campaign's own content,
    so that no CSS of the campaign can hide our footer (``mail.visibility``).
    """
    protected, saved = _protect(html)
    inlined = Premailer(
        protected,
        keep_style_tags=False,
        strip_important=False,
        disable_validation=True,
        allow_network=False,
        allow_loading_external_files=False,
        cssutils_logging_level=logging.CRITICAL,
        disable_link_rewrites=True,
    ).transform()
    return _restore(visibility.keep_footer_visible(inlined, template_code=PLACEHOLDER_RE), saved)


def text_from_html(html: str) -> str:
    """Derive a readable text/plain template from an HTML template (links as ``text <url>``)."""
    protected, saved = _protect(html)
    document = lxml.html.document_fromstring(protected)
    for bad in document.xpath("//style|//script|//head"):
        bad.drop_tree()
    parts: list[str] = []

    def walk(element) -> None:
        tag = element.tag if isinstance(element.tag, str) else ""
        if tag == "br":
            parts.append("\n")
        elif tag in BLOCKS:
            parts.append("\n\n")
        if element.text:
            parts.append(element.text)
        for child in element:
            walk(child)
            if child.tail:
                parts.append(child.tail)
        if (
            tag == "a"
            and element.get("href")
            and element.get("href") != (element.text or "").strip()
        ):
            parts.append(f" <{element.get('href')}>")
        if tag in BLOCKS:
            parts.append("\n\n")

    body = document.find("body")
    walk(body if body is not None else document)
    text = "".join(parts)
    text = re.sub(r"[ \t]+", " ", text)
    text = re.sub(r" *\n *", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"
    return _restore(text, saved)


def _check_names(env: SandboxedEnvironment, field: str, source: str) -> None:
    """Refuse unknown filters and tests anywhere, not only in the branches a sample reaches.

    Jinja2 looks filters up when a branch runs, so a typo inside ``{% if %}`` would otherwise
    fail for some recipients in the middle of a send. In HTML, raw output (``safe``,
    ``{% autoescape false %}``) is refused: an unclosed ``<!--`` or tag could hide our footer.
    """
    tree = env.parse(source)
    for node in tree.find_all((nodes.Filter, nodes.Test)):
        known = env.filters if isinstance(node, nodes.Filter) else env.tests
        if node.name not in known:
            kind = "filter" if isinstance(node, nodes.Filter) else "test"
            message = f"template error on line {node.lineno}: no {kind} named {node.name!r}"
            raise InvalidInput(field, message)
        if env.autoescape and isinstance(node, nodes.Filter) and node.name == "safe":
            raise InvalidInput(field, f"line {node.lineno}: raw HTML output (safe) is not allowed")
    if env.autoescape and any(True for _ in tree.find_all(nodes.EvalContextModifier)):
        raise InvalidInput(field, "raw HTML output (autoescape) is not allowed")


def compile_variant(
    *,
    subject: str,
    html: str,
    text: str | None,
    language: str,
    topic_name: str,
    bounds: Limits = DEFAULT_LIMITS,
    rewrite_links: Callable[[str], str] | None = None,
) -> CompiledVariant:
    """Compile a variant once: inline CSS, derive text if needed, check by rendering a sample.

    Every render, the sample's here and each recipient's later, runs under ``bounds``
    (``mail.limits``): a template that takes too long or grows too large is stopped. Subject,
    HTML and text are each checked on their own, so ``InvalidFields`` names every bad one.
    ``rewrite_links`` changes the HTML's links once (click figures, ``mail.clicks``).
    """
    html_env, text_env = _sandboxes(bounds)
    problems: dict[str, list[str]] = {}
    templates: dict[str, jinja2.Template] = {}
    sources: dict[str, str | None] = {"subject": subject, "html": None, "text": text}
    try:
        sources["html"] = inline_css(html)
        if rewrite_links is not None:
            sources["html"] = rewrite_links(sources["html"])
    except InvalidInput as exc:
        problems["html"] = [exc.reason]
    except Exception as exc:  # noqa: BLE001 - lxml/cssutils errors: the HTML is unusable
        problems["html"] = [f"cannot inline its CSS ({exc})"]
    if text is None:
        try:
            sources["text"] = text_from_html(html)
        except Exception:  # noqa: BLE001 - the HTML's own problem is reported above
            sources["text"] = ""
    sample = _context(topic_name, SAMPLE, "https://x/u", "https://x/p")
    for field, source in sources.items():
        if source is None or (field == "text" and text is None and "html" in problems):
            continue  # a text derived from bad HTML would only repeat the HTML's problem
        try:
            templates[field] = _checked_template(
                html_env if field == "html" else text_env, field, source, sample
            )
        except InvalidInput as exc:
            problems[field] = [exc.reason]
    if problems:
        raise InvalidFields(problems)
    return CompiledVariant(
        language=language,
        topic_name=topic_name,
        subject=templates["subject"],
        html=templates["html"],
        text=templates["text"],
        footer=compile_footer(language, topic_name),
    )


def _checked_template(
    env: SandboxedEnvironment, field: str, source: str, sample: dict[str, object]
) -> jinja2.Template:
    """Compile one template and render it for the sample person; raise InvalidInput if bad."""
    try:
        template = env.from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        raise InvalidInput(field, f"template error on line {exc.lineno}: {exc.message}") from None
    _check_names(env, field, source)
    try:
        template.render(sample)
    except TemplateTooCostly as exc:
        raise InvalidInput(field, f"the sample message is refused: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - any runtime error means the template is unusable
        raise InvalidInput(field, f"template cannot be rendered: {exc}") from None
    return template


def compile_footer(language: str, topic_name: str) -> Footer:
    """Render our footer in ``language``, naming the topic as a reader of it sees it."""
    env = _footer_env(language)
    frame = _context(topic_name, SAMPLE, _UNSUBSCRIBE_STAND_IN, _PREFERENCES_STAND_IN)
    return Footer(
        # In a wrapper the campaign's CSS cannot reach and no overlay can cover (visibility).
        html=f'<div style="{visibility.FOOTER_STYLE}">'
        + env.get_template("footer.html").render(frame)
        + "</div>",
        text=env.get_template("footer.txt").render(frame),
    )


_UNSUBSCRIBE_STAND_IN = "PREFSVCUNSUBSCRIBEURLX"
_PREFERENCES_STAND_IN = "PREFSVCPREFERENCESURLX"


def _fill_footer(frame: str, unsubscribe_url: str, preferences_url: str, *, html: bool) -> str:
    """Put a recipient's links into a pre-rendered footer, escaped as Jinja2 would escape them."""
    if html:
        unsubscribe_url, preferences_url = (
            str(escape(unsubscribe_url)),
            str(escape(preferences_url)),
        )
    return frame.replace(_UNSUBSCRIBE_STAND_IN, unsubscribe_url).replace(
        _PREFERENCES_STAND_IN, preferences_url
    )


def _context(
    topic_name: str, contact: RecipientContext, unsubscribe_url: str, preferences_url: str
) -> dict[str, object]:
    return {
        "contact": contact,
        "unsubscribe_url": unsubscribe_url,
        "preferences_url": preferences_url,
        "topic": topic_name,
    }


def render(
    variant: CompiledVariant,
    *,
    contact: RecipientContext,
    unsubscribe_url: str,
    preferences_url: str,
    footer: Footer | None = None,
) -> Rendered:
    """Render one recipient's subject and bodies, each with our footer in their language.

    ``footer`` is the footer in the reader's language (``compile_footer``), which may differ
    from the variant's; without it the variant's own is used.
    """
    footer = footer or variant.footer
    context = _context(variant.topic_name, contact, unsubscribe_url, preferences_url)
    with limits.one_deadline(variant.html.environment.limits):  # one message, one deadline
        subject = " ".join(variant.subject.render(context).split())
        html = variant.html.render(context)
        body = variant.text.render(context)
    footer_html = _fill_footer(footer.html, unsubscribe_url, preferences_url, html=True)
    # Per recipient, so mind the cost: regexes over a 50 KB body cost more than Jinja2 itself.
    # The footer goes before the last </body>: look in the tail first.
    tail = max(0, len(html) - 4096)
    ends = list(BODY_END.finditer(html, tail)) or list(BODY_END.finditer(html))
    if ends:
        cut = ends[-1].start()
        html = html[:cut] + footer_html + html[cut:]
    else:
        html = html + footer_html
    if "\n\n\n" in body:
        body = BLANK_RUNS.sub("\n\n", body)
    body = body.strip("\n")
    footer_text = _fill_footer(footer.text, unsubscribe_url, preferences_url, html=False)
    text = body + "\n" + footer_text + "\n"
    return Rendered(subject=subject, html=html, text=text)
