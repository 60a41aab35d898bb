"""``prefsvc topics create/update/list`` with names and descriptions per language."""

from __future__ import annotations

import json

import pytest

from prefsvc.people import topics

pytestmark = pytest.mark.all_databases


def _listed(runner) -> dict:
    result = runner.invoke(args=["topics", "list", "--json"])
    assert result.exit_code == 0, result.stderr
    return {t["slug"]: t for t in json.loads(result.stdout)}


def test_create_with_name_sets_every_language(runner):
    result = runner.invoke(args=["topics", "create", "nieuws", "--name", "Nieuws"])

    assert result.exit_code == 0, result.stderr
    assert _listed(runner)["nieuws"] == {
        "slug": "nieuws",
        "name": "Nieuws",
        "description": None,
        "names": {"nl": "Nieuws", "fr": "Nieuws", "en": "Nieuws"},
        "descriptions": {"nl": None, "fr": None, "en": None},
    }


@pytest.mark.parametrize("language", ["nl", "fr", "en"])
def test_a_language_flag_sets_that_language_alone(runner, language):
    result = runner.invoke(
        args=[
            "topics",
            "create",
            "nieuws",
            "--name",
            "Nieuws",
            "--description",
            "Elke maand",
            f"--name-{language}",
            f"Name in {language}",
            f"--description-{language}",
            f"About {language}",
        ]
    )

    assert result.exit_code == 0, result.stderr
    listed = _listed(runner)["nieuws"]
    for lang in ("nl", "fr", "en"):
        expected = (f"Name in {lang}", f"About {lang}") if lang == language else None
        shown = (listed["names"][lang], listed["descriptions"][lang])
        assert shown == (expected or ("Nieuws", "Elke maand"))


def test_update_edits_one_language_and_plain_list_shows_every_name(runner, session):
    runner.invoke(args=["topics", "create", "nieuws", "--name-nl", "Nieuws"])

    result = runner.invoke(
        args=["topics", "update", "nieuws", "--name-fr", "Actualités", "--name-en", "News"]
    )

    assert result.exit_code == 0, result.stderr
    assert result.stdout == "updated topic nieuws\n"
    listing = runner.invoke(args=["topics", "list"])
    assert listing.stdout == "nieuws\tNieuws\tActualités\tNews\n"
    session.expire_all()
    assert topics.by_slug(session, "nieuws").name_in("fr") == "Actualités"


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["create", "other"], "name: is empty: give a name in at least one language"),
        (["create", "Bad Slug", "--name", "x"], "slug: use lower-case letters"),
        (["update", "ghost", "--name", "x"], "no topic 'ghost'"),
        (["update", "nieuws", "--name-nl", ""], "name: is empty"),
    ],
)
def test_errors_are_one_line_without_traceback(runner, args, reason):
    runner.invoke(args=["topics", "create", "nieuws", "--name-nl", "Nieuws"])

    result = runner.invoke(args=["topics", *args])

    assert result.exit_code != 0
    assert reason in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
