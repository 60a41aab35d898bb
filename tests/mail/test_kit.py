"""The mail kit of a process: variants compiled once, shared signers, per-thread transports."""

from __future__ import annotations

import threading
import uuid

import pytest

from prefsvc.mail import kit, layout
from prefsvc.mail.rendering import SAMPLE, render
from prefsvc.mail.tokens import Signer
from prefsvc.models import ContentFormat
from tests.factories import DEFAULT_HTML, make_campaign, make_topic


@pytest.fixture
def compiles(monkeypatch) -> list[str]:
    """Count the compilations (premailer runs) the kit asks for, by subject."""
    calls: list[str] = []
    real = kit.layout.compile_variant

    def counting(**kwargs):
        calls.append(kwargs["subject"])
        return real(**kwargs)

    monkeypatch.setattr(kit.layout, "compile_variant", counting)
    return calls


SENDER = layout.Identity("Haven vzw", "Kaai 1, Antwerpen", "https://haven.example/privacy")


def _variant(session, subject: str):
    # A subject unique to the test: the cache is the process's, shared by every test.
    campaign = make_campaign(session, make_topic(session), subject=f"{subject} {uuid.uuid4()}")
    return campaign.variants[0]


def _html(compiled) -> str:
    return render(compiled, contact=SAMPLE, unsubscribe_url="u", preferences_url="p").html


def test_a_variant_is_compiled_once_per_process_whatever_the_recipients(session, compiles):
    variant = _variant(session, "Nieuws")
    results = [kit.compiled(variant, "Haven", identity=SENDER) for _ in range(20)]
    assert len(compiles) == 1
    assert all(r is results[0] for r in results)


def test_an_edited_variant_or_a_renamed_topic_is_compiled_again(session, compiles):
    variant = _variant(session, "Nieuws")
    first = kit.compiled(variant, "Haven", identity=SENDER)
    renamed = kit.compiled(variant, "Haven & Logistiek", identity=SENDER)
    variant.html = DEFAULT_HTML.replace("Nieuwe opleidingen", "Nieuwe cursussen")
    edited = kit.compiled(variant, "Haven", identity=SENDER)
    assert len(compiles) == 3
    assert first is not renamed and first is not edited
    assert "Nieuwe cursussen" in _html(edited) and "Nieuwe cursussen" not in _html(first)
    assert "Haven &amp; Logistiek" in _html(renamed) and "Logistiek" not in _html(first)


def test_a_markdown_variant_is_compiled_again_when_the_sender_changes(session, compiles):
    variant = _variant(session, "Nieuws")
    variant.campaign.content_format = ContentFormat.MARKDOWN
    variant.html = "Hallo **{{ contact.first_name }}**"
    first = kit.compiled(variant, "Haven", identity=SENDER)
    moved = kit.compiled(
        variant, "Haven", identity=layout.Identity("Haven vzw", "Dok 9", SENDER.privacy_url)
    )
    assert len(compiles) == 2
    assert "Kaai 1" in _html(first) and "Dok 9" in _html(moved)
    assert "<strong>Sam</strong>" in _html(first)


def test_links_are_a_one_click_and_a_preference_url_the_signer_accepts(settings):
    unsubscribe, preferences = kit.links(settings, "public-id", 7)
    base = "https://news.example.org"
    assert unsubscribe.startswith(f"{base}/u/") and preferences.startswith(f"{base}/p/")
    signer = Signer(settings.secret_keys)  # as a web process with the same keys would
    claim = signer.read_unsubscribe(unsubscribe.removeprefix(f"{base}/u/"))
    assert (claim.public_id, claim.topic_id) == ("public-id", 7)
    assert signer.read_preferences(preferences.removeprefix(f"{base}/p/")) == "public-id"


def test_one_signer_per_key_set_is_shared_by_the_process(settings):
    assert kit.signer(settings) is kit.signer(settings.with_(batch_size=7))
    rotated = kit.signer(settings.with_(secret_keys=("another-key-0123456789",)))
    assert rotated is not kit.signer(settings)


def test_each_thread_keeps_its_own_transport(settings):
    mine = kit.transport(settings)
    theirs: list = []
    thread = threading.Thread(target=lambda: theirs.append(kit.transport(settings)))
    thread.start()
    thread.join()
    assert kit.transport(settings) is mine
    assert theirs[0] is not mine
    kit.close_thread_resources()
    assert kit.transport(settings) is not mine  # opened again after closing


def test_list_id_and_envelope_sender_come_from_the_settings(settings, session):
    topic = make_topic(session, slug="haven", name='Haven "<Logistiek>"')
    assert kit.list_id(settings, topic) == "Haven 'Logistiek' <haven.news.example.org>"
    assert kit.envelope_sender(settings) == "news@example.org"
    assert kit.mail_domain(settings) == "example.org"
