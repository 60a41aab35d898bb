"""The house layout: Markdown made into responsive mail that names who is writing."""

from __future__ import annotations

import pytest

from prefsvc.errors import InvalidInput
from prefsvc.mail import layout
from prefsvc.mail.rendering import SAMPLE, render

SENDER = layout.Identity(
    name="Havenopleidingen vzw",
    address="Havenstraat 1, 2000 Antwerpen",
    privacy_url="https://haven.example/privacy",
    logo_url="https://haven.example/logo.png",
)
MARKDOWN = """# Hallo {{ contact.first_name }}

Nieuwe **opleidingen** in de haven:

- Veiligheid aan boord
- [Inschrijven](https://haven.example/inschrijven?a=1&b=2)

{% if contact.organisation %}Voor {{ contact.organisation }}.{% endif %}
"""


def _mail(content: str = MARKDOWN, *, language: str = "nl", preheader: str | None = None, **kw):
    variant = layout.compile_variant(
        content_format=kw.pop("content_format", "markdown"),
        subject=kw.pop("subject", "Nieuws voor {{ contact.first_name }}"),
        content=content,
        text=kw.pop("text", None),
        preheader=preheader,
        language=language,
        topic_name="Nieuwe opleidingen",
        identity=kw.pop("identity", SENDER),
    )
    return render(
        variant,
        contact=SAMPLE,
        unsubscribe_url="https://x.example/u/TOKEN",
        preferences_url="https://x.example/p/TOKEN",
    )


@pytest.mark.parametrize("language", ["nl", "fr", "en"])
def test_markdown_comes_out_as_responsive_mail_in_the_variants_language(language):
    html = _mail(language=language).html
    assert f'<html lang="{language}">' in html
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert "<title>Nieuws voor Sam</title>" in html
    assert "max-width:600px" in html and 'role="presentation"' in html
    assert "<strong style" in html or "<strong>opleidingen</strong>" in html
    assert 'href="https://haven.example/inschrijven?a=1&amp;b=2"' in html
    assert "Hallo Sam" in html and "Voor Org." in html


def test_the_house_layout_names_the_sender_its_address_and_privacy_statement():
    mail = _mail()
    assert "Havenopleidingen vzw" in mail.html and "Havenstraat 1, 2000 Antwerpen" in mail.html
    assert 'href="https://haven.example/privacy"' in mail.html
    assert 'src="https://haven.example/logo.png" alt="Havenopleidingen vzw"' in mail.html
    assert "Privacyverklaring" in mail.html
    assert "Havenstraat 1, 2000 Antwerpen" in mail.text
    assert "https://haven.example/privacy" in mail.text


def test_without_a_logo_the_name_stands_in_for_it():
    plain = layout.Identity("Haven vzw", "Kaai 1", "https://haven.example/privacy")
    html = _mail(identity=plain).html
    assert "<img" not in html and html.count("Haven vzw") >= 2


def test_our_footer_with_the_unsubscribe_link_follows_the_layout_in_both_parts():
    mail = _mail()
    assert 'href="https://x.example/u/TOKEN"' in mail.html
    assert mail.html.index("Havenstraat 1") < mail.html.index("https://x.example/u/TOKEN")
    assert mail.html.rstrip().endswith("</html>")
    assert "https://x.example/u/TOKEN" in mail.text


def test_the_preheader_is_hidden_first_in_the_body_and_not_in_the_text():
    mail = _mail(preheader="Vijf nieuwe cursussen voor {{ contact.first_name }}")
    body = mail.html[mail.html.index("<body") :]
    hidden = body.index('class="preheader"')
    assert hidden < body.index("Hallo Sam")
    assert "display:none" in body[hidden : hidden + 300]
    assert "Vijf nieuwe cursussen voor Sam" in body
    assert "Vijf nieuwe cursussen" not in mail.text


def test_raw_html_also_gets_the_preheader_after_its_body_tag():
    source = "<html><body><p>Hallo {{ contact.first_name }}</p></body></html>"
    mail = _mail(source, content_format="html", preheader="Kort & bondig")
    assert mail.html.index('class="preheader"') < mail.html.index("Hallo Sam")
    assert "Kort &amp; bondig" in mail.html
    assert "Kort" not in mail.text and "Hallo Sam" in mail.text


def test_the_text_part_is_derived_from_the_markdown_with_its_links():
    text = _mail().text
    assert "Hallo Sam" in text and "**" not in text and "#" not in text
    assert "Inschrijven <https://haven.example/inschrijven?a=1&b=2>" in text


def test_markdown_cannot_carry_raw_html_that_could_hide_the_footer():
    mail = _mail("Hallo <!-- {{ contact.first_name }}\n\n<script>x()</script>")
    assert "<!--" not in mail.html.split("<body", 1)[1].replace("<!--[if mso]>", "")
    assert "<script>" not in mail.html
    assert "https://x.example/u/TOKEN" in mail.html


def test_template_syntax_in_a_setting_is_shown_as_written():
    odd = layout.Identity("Haven {{ x }}", "Kaai {% if %}", "https://haven.example/privacy")
    html = _mail(identity=odd).html
    assert "Haven {{ x }}" in html and "Kaai {% if %}" in html


@pytest.mark.parametrize(
    ("field", "kw"),
    [
        ("html", {"content": "Hallo {{ contact.first_name "}),
        ("preheader", {"preheader": "Kort {% if %}"}),
        ("subject", {"subject": "Nieuws {{ }"}),
    ],
)
def test_a_broken_template_is_refused_naming_its_field(field, kw):
    with pytest.raises(InvalidInput) as refused:
        _mail(**kw)
    assert refused.value.field == field
