"""Campaign templates: CSS inlined once, links and Jinja2 intact, our footer always present."""

from __future__ import annotations

import dataclasses

import pytest
from babel.support import Translations

import prefsvc.mail.rendering
from prefsvc.errors import InvalidInput
from prefsvc.mail.rendering import SAMPLE, RecipientContext, compile_variant, render
from prefsvc.resources import PACKAGE_DIR

UNSUB = "https://news.example.org/u/eyJjIjoiYWJjIiwidCI6M30.sig-_x"
PREFS = "https://news.example.org/p/eyJjIjoiYWJjIn0.other-sig"
TOPIC = "Haven & Logistiek"

TEMPLATE = """<html><head><style>
  .title { color: #0b3d91; font-size: 22px; }
  td.price { font-weight: bold; }
</style></head><body>
<h1 class="title">Nieuwe opleidingen</h1>
<p>Beste {{ contact.first_name }},</p>
<table>{% for course in ["Heftruck", "Kraan", "VCA"] %}
<tr><td class="price">{{ course }}</td></tr>{% endfor %}</table>
{% if contact.organisation %}<p>Voor {{ contact.organisation }}</p>
{% else %}<p>Voor u</p>{% endif %}
<p><a href="{{ unsubscribe_url }}">Afmelden</a> of <a href="{{preferences_url}}">voorkeuren</a></p>
</body></html>"""


def person(**changes) -> RecipientContext:
    return dataclasses.replace(SAMPLE, **changes)


def variant(
    html: str = TEMPLATE,
    *,
    subject: str = "Nieuws voor {{ contact.first_name }}",
    text: str | None = None,
    language: str = "nl",
    topic_name: str = TOPIC,
):
    return compile_variant(
        subject=subject, html=html, text=text, language=language, topic_name=topic_name
    )


def rendered(v=None, **contact):
    return render(
        v or variant(), contact=person(**contact), unsubscribe_url=UNSUB, preferences_url=PREFS
    )


def test_style_rules_are_inlined_and_the_style_block_removed():
    html = rendered().html
    assert '<h1 class="title" style="color:#0b3d91; font-size:22px">' in html
    assert html.count('<td class="price" style="font-weight:bold">') == 3
    assert "<style" not in html


def test_template_links_with_and_without_spaces_render_the_real_urls():
    html = rendered().html
    assert f'<a href="{UNSUB}">Afmelden</a>' in html
    assert f'<a href="{PREFS}">voorkeuren</a>' in html
    assert "%20" not in html and "{{" not in html


def test_for_loop_inside_a_table_and_if_blocks_still_work_after_inlining():
    with_org = rendered(organisation="Port of Antwerp").html
    without_org = rendered(organisation=None).html
    assert [c in with_org for c in ("Heftruck</td>", "Kraan</td>", "VCA</td>")] == [True] * 3
    assert with_org.index("Heftruck") < with_org.index("Kraan") < with_org.index("VCA")
    assert "<p>Voor Port of Antwerp</p>" in with_org and "Voor u" not in with_org
    assert "<p>Voor u</p>" in without_org


def _catalog(language: str) -> Translations:
    mo = PACKAGE_DIR / "translations" / language / "LC_MESSAGES" / "messages.mo"
    assert mo.exists(), f"no compiled catalog for {language}"
    return Translations.load(str(PACKAGE_DIR / "translations"), [language])


@pytest.mark.parametrize(
    "language, unsubscribe_word",
    [("nl", "Uitschrijven"), ("fr", "Se désabonner"), ("en", "Unsubscribe")],
)
def test_footer_is_in_both_bodies_in_the_recipients_language(language, unsubscribe_word):
    catalog = _catalog(language)
    result = rendered(variant(language=language), language=language)
    reason = catalog.gettext(
        "You are receiving this email because you are on the mailing list “%(topic)s”."
    ) % {"topic": TOPIC}
    manage = catalog.gettext("Manage your preferences")
    assert catalog.gettext("Unsubscribe") == unsubscribe_word

    footer_html = result.html[result.html.rindex("<div") :]
    assert f'<a href="{UNSUB}" style="color:#0b3d91">{unsubscribe_word}</a>' in footer_html
    assert f'<a href="{PREFS}" style="color:#0b3d91">{manage}</a>' in footer_html
    assert reason.replace("&", "&amp;") in footer_html
    assert result.html.rstrip().endswith("</body>\n</html>")

    footer_text = result.text.split("\n-- \n", 1)[1]
    assert footer_text == f"{reason}\n{unsubscribe_word}: {UNSUB}\n{manage}: {PREFS}\n"


@pytest.mark.parametrize(
    "html",
    [
        "<p>Geen body-tags, geen afmeldlink</p>",
        "{# <html><body><p>alles in commentaar</p></body></html> #}",
        "<html><body>{% if false %}</body></html>{% endif %}",
        "<p>{{ '<!--'|safe }}</p>",
    ],
    ids=["no-body-end", "all-commented-out", "body-end-in-dead-branch", "raw-comment-opener"],
)
def test_a_template_cannot_remove_the_footer(html):
    try:
        result = rendered(variant(html))
    except InvalidInput:
        return  # refused at compile time is also fine: it never reaches anyone
    assert f'href="{UNSUB}"' in result.html and f'href="{PREFS}"' in result.html
    before_footer = result.html.split(UNSUB)[0]
    assert before_footer.count("<!--") <= before_footer.count("-->")  # no comment hides it
    assert f"Uitschrijven: {UNSUB}\n" in result.text
    assert f"Uw voorkeuren beheren: {PREFS}\n" in result.text


@pytest.mark.parametrize(
    "html",
    [
        "<p>{{ contact.first_name|safe }}</p>",
        "<p>{% filter safe %}{{ '<div style=\"display:none\">' }}{% endfilter %}</p>",
        "<p>{% autoescape false %}{{ '<div style=\"display:none\">' }}{% endautoescape %}</p>",
    ],
)
def test_raw_html_output_is_refused_as_it_could_hide_the_footer(html):
    with pytest.raises(InvalidInput) as caught:
        variant(html)
    assert caught.value.field == "html"


def test_contact_names_are_escaped_in_html_but_not_in_text_or_subject():
    v = variant(text="Dag {{ contact.first_name }} {{ contact.last_name }}")
    result = rendered(v, first_name="<b>Jo & Co</b>", last_name='O\'Neil "Q"')
    assert "Beste &lt;b&gt;Jo &amp; Co&lt;/b&gt;," in result.html
    assert "<b>Jo" not in result.html
    assert result.text.startswith('Dag <b>Jo & Co</b> O\'Neil "Q"\n')
    assert result.subject == "Nieuws voor <b>Jo & Co</b>"


def test_subject_stays_one_line_whatever_the_name():
    result = rendered(first_name="Ana\r\nBcc: victim@example.org\n")
    assert "\r" not in result.subject and "\n" not in result.subject
    assert result.subject == "Nieuws voor Ana Bcc: victim@example.org"


@pytest.mark.parametrize(
    "field, sources",
    [
        ("html", {"html": "<p>{% if contact.first_name %}open</p>"}),
        ("html", {"html": "<p>{{ contact.first_name|shout }}</p>"}),
        ("subject", {"subject": "Hallo {{ contact.first_name "}),
        ("subject", {"subject": "Hallo {{ contact.first_name|shout }}"}),
        ("text", {"text": "Dag {% for x in %}"}),
        ("text", {"text": "Dag {{ contact.first_name|shout }}"}),
        # only reached for some recipients: must still be refused before anything is sent
        ("html", {"html": "<p>{% if contact.first_name == 'Zoë' %}{{ 1|shout }}{% endif %}</p>"}),
        ("text", {"text": "{% if contact.first_name == 'Zoë' %}{{ 1 is nonsense }}{% endif %}"}),
    ],
)
def test_template_errors_are_reported_on_the_field(field, sources):
    arguments = {"html": TEMPLATE, "subject": "Nieuws", "text": None} | sources
    with pytest.raises(InvalidInput) as caught:
        variant(**arguments)
    assert caught.value.field == field


@pytest.mark.parametrize(
    "expression",
    [
        "contact.__class__.__mro__",
        "''.__class__",
        "''.__class__.__mro__[1].__subclasses__()",
        "contact|attr('__class__')",
        "range.__globals__",
    ],
)
def test_templates_cannot_reach_python_internals(expression):
    html = f"<p>[{{{{ {expression} }}}}]</p>"
    try:
        result = rendered(variant(html))
    except InvalidInput as exc:
        assert exc.field == "html"
        return
    assert "<p>[]</p>" in result.html
    assert "class" not in result.html.split("<div")[0]


def test_text_is_derived_from_html_with_link_urls():
    result = rendered(variant(text=None))
    body = result.text.split("\n-- \n", 1)[0]
    assert "Nieuwe opleidingen" in body
    assert "Beste Sam," in body
    assert f"Afmelden <{UNSUB}> of voorkeuren <{PREFS}>" in body
    assert "<p>" not in body and "color" not in body


def test_given_text_is_used_as_is_rather_than_derived():
    result = rendered(variant(text="Platte tekst voor {{ contact.first_name }}."))
    assert result.text.startswith("Platte tekst voor Sam.\n\n-- \n")


def test_premailer_runs_once_per_variant_not_per_recipient(monkeypatch):
    calls = []
    real = prefsvc.mail.rendering.Premailer

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(prefsvc.mail.rendering, "Premailer", counting)
    v = variant()
    names = [f"Naam{i}" for i in range(50)]
    results = [rendered(v, first_name=name) for name in names]
    assert len(calls) == 1
    assert [f"Beste {n}," in r.html for n, r in zip(names, results, strict=True)] == [True] * 50
