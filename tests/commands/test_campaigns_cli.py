"""``prefsvc campaigns create --fallback`` and ``show --json``'s ``by_language`` (CONTRACT §9)."""

from __future__ import annotations

import json

import pytest

from tests.factories import make_contact, make_topic


@pytest.fixture
def readers(session):
    topic = make_topic(session, "nieuws", "Nieuws")
    make_contact(session, "nl@example.org", language="nl", topics=[topic])
    make_contact(session, "en@example.org", language="en", topics=[topic])
    session.commit()
    return topic


def _create(runner, tmp_path, *extra: str) -> int:
    html = tmp_path / "mail.html"
    html.write_text("<p>Hallo {{ contact.first_name }}</p>", encoding="utf-8")
    args = ["campaigns", "create", "--topic", "nieuws", "--subject", "Nieuws"]
    result = runner.invoke(args=[*args, "--html", str(html), *extra])
    assert result.exit_code == 0, result.stderr
    return int(result.stdout.strip().splitlines()[-1])


def _show(runner, campaign_id: int) -> dict:
    result = runner.invoke(args=["campaigns", "show", str(campaign_id), "--json"])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize(
    ("extra", "fallback", "english"),
    [((), "nl", {"nl": 1}), (("--fallback", "none"), None, {"excluded": 1})],
)
def test_create_with_a_fallback_and_show_who_gets_which_language(
    runner, readers, tmp_path, extra, fallback, english
):
    report = _show(runner, _create(runner, tmp_path, *extra))
    assert report["fallback"] == fallback
    assert report["by_language"] == {"en": english, "nl": {"nl": 1}}


def test_a_fallback_in_a_language_not_written_is_refused_in_one_line(runner, readers, tmp_path):
    html = tmp_path / "mail.html"
    html.write_text("<p>Hallo</p>", encoding="utf-8")
    result = runner.invoke(
        args=["campaigns", "create", "--topic", "nieuws", "--subject", "S", "--html", str(html)]
        + ["--fallback", "fr"]
    )
    assert result.exit_code != 0
    assert "fallback" in result.stderr and "Traceback" not in result.stderr


def test_create_a_markdown_campaign_with_a_preheader(runner, readers, tmp_path):
    content = tmp_path / "mail.md"
    content.write_text("# Hallo {{ contact.first_name }}\n\nNieuwe *cursussen*.", encoding="utf-8")
    args = ["campaigns", "create", "--topic", "nieuws", "--subject", "Nieuws"]
    result = runner.invoke(
        args=[*args, "--html", str(content), "--format", "markdown", "--preheader", "Kijk"]
        + ["--name", "Maart"]
    )
    assert result.exit_code == 0, result.stderr
    report = _show(runner, int(result.stdout.strip().splitlines()[-1]))
    assert report["content_format"] == "markdown" and report["name"] == "Maart"


def test_duplicate_delete_and_archive_from_the_command_line(runner, readers, tmp_path):
    original = _create(runner, tmp_path)
    copied = runner.invoke(args=["campaigns", "duplicate", str(original)])
    assert copied.exit_code == 0, copied.stderr
    copy = int(copied.stdout.strip().splitlines()[-1])
    assert _show(runner, copy)["name"] == "Nieuws (copy)"

    deleted = runner.invoke(args=["campaigns", "delete", str(copy)])
    assert deleted.exit_code == 0, deleted.stderr
    gone = runner.invoke(args=["campaigns", "show", str(copy), "--json"])
    assert gone.exit_code != 0

    too_early = runner.invoke(args=["campaigns", "archive", str(original)])
    assert too_early.exit_code != 0 and "sent or cancelled" in too_early.stderr
    assert runner.invoke(args=["campaigns", "send", str(original), "--wait"]).exit_code == 0
    refused = runner.invoke(args=["campaigns", "delete", str(original)])
    assert refused.exit_code != 0 and "only a draft" in refused.stderr
    assert "Traceback" not in refused.stderr
    archived = runner.invoke(args=["campaigns", "archive", str(original)])
    assert archived.exit_code == 0, archived.stderr
    assert _show(runner, original)["archived"] is True


def test_a_template_bomb_is_refused_in_one_line_naming_the_field(runner, readers, tmp_path):
    html = tmp_path / "mail.html"
    html.write_text("<p>{{ 'a' * 300000000 }}</p>", encoding="utf-8")
    result = runner.invoke(
        args=["campaigns", "create", "--topic", "nieuws", "--subject", "S", "--html", str(html)]
    )
    assert result.exit_code != 0
    assert "html: the sample message is refused" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_show_gives_results_per_language_and_clicks_of_a_tracked_campaign(
    runner, readers, tmp_path, run_campaign
):
    html = tmp_path / "mail.html"
    html.write_text('<p><a href="https://example.org/x">x</a></p>', encoding="utf-8")
    result = runner.invoke(
        args=["campaigns", "create", "--topic", "nieuws", "--subject", "S", "--html", str(html)]
        + ["--track-clicks"]
    )
    campaign_id = int(result.stdout.strip().splitlines()[-1])
    run_campaign(campaign_id)
    shown = runner.invoke(args=["campaigns", "show", str(campaign_id)])
    assert "results en   1 sent, 0 failed, 0 unsubscribes" in shown.stdout
    assert "clicks       0" in shown.stdout and "https://example.org/x" in shown.stdout
    report = _show(runner, campaign_id)
    assert report["track_clicks"] is True
    assert report["clicks"]["links"] == [{"link": 0, "url": "https://example.org/x", "clicks": 0}]


def test_show_puts_a_space_after_every_came_back_label(
    runner, readers, session, tmp_path, run_campaign
):
    """``policy_refusals`` is longer than the label column: it ran into its count."""
    from sqlalchemy import update

    from prefsvc.models import Delivery

    campaign_id = _create(runner, tmp_path)
    run_campaign(campaign_id)
    session.execute(
        update(Delivery).where(Delivery.campaign_id == campaign_id).values(feedback="policy")
    )
    session.commit()

    shown = runner.invoke(args=["campaigns", "show", str(campaign_id)]).stdout

    assert "  policy_refusals 2 (100.00% of sent)" in shown
    assert "  bounced      0 (0.00% of sent)" in shown  # the shorter labels as they were
