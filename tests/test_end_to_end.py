"""The walking skeleton as a user meets it: import, send, open the mail, one-click, next send."""

from __future__ import annotations

import json
import re

import pytest

pytestmark = pytest.mark.all_databases

CSV = """email;first_name;last_name;language;organisation;role;topics;basis;basis_date
ana@example.org;Ana;Peeters;nl;Haven NV;trainee;nieuws;training;2025-09-01
Benoit@Example.org;Benoît;Dubois;fr;Port SA;customer;nieuws;customer;2025-10-01
chloe@example.org;Chloe;Smith;en;Terminal Ltd;teacher;nieuws;consent;2024-02-29
"""

HTML = """<html><head><style>h1 { color: #0b3d91; }</style></head>
<body><h1>Nieuw aanbod</h1><p>Dag {{ contact.first_name }},</p></body></html>"""


def _ok(result):
    assert result.exit_code == 0, result.stderr or result.output
    return result


def test_import_send_one_click_and_the_next_campaign_skips_that_contact(
    runner, client, outbox, tmp_path
):
    (tmp_path / "contacts.csv").write_text(CSV, encoding="utf-8")
    (tmp_path / "mail.html").write_text(HTML, encoding="utf-8")
    _ok(runner.invoke(args=["topics", "create", "nieuws", "--name", "Nieuwsbrief"]))
    summary = json.loads(
        _ok(runner.invoke(args=["contacts", "import", str(tmp_path / "contacts.csv")])).stdout
    )
    assert summary["created"] == 3

    create = [
        "campaigns",
        "create",
        "--topic",
        "nieuws",
        "--subject",
        "Nieuw",
        "--html",
        str(tmp_path / "mail.html"),
    ]
    first_id = int(_ok(runner.invoke(args=create)).stdout.strip().splitlines()[-1])
    _ok(runner.invoke(args=["campaigns", "send", str(first_id), "--wait"]))

    first_wave = outbox()
    delivered = {m["To"]: m for m in first_wave}
    assert set(delivered) == {"ana@example.org", "benoit@example.org", "chloe@example.org"}
    mail = delivered["benoit@example.org"]
    assert "Benoît" in mail.get_body(("html",)).get_content()
    url = re.fullmatch(r"<(.+)>", mail["List-Unsubscribe"]).group(1)
    path = url.removeprefix("https://news.example.org")

    # what a mailbox provider does for RFC 8058: POST with the one-click body, no cookies
    response = client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200

    second_id = int(_ok(runner.invoke(args=create)).stdout.strip().splitlines()[-1])
    _ok(runner.invoke(args=["campaigns", "send", str(second_id), "--wait"]))

    from prefsvc.queue import broker

    broker.queue().join(timeout_ms=10_000)  # the opt-out acknowledgement goes its own queue
    seen = {m["Message-ID"] for m in first_wave}
    later = [m for m in outbox() if m["Message-ID"] not in seen]
    second_wave = [m["To"] for m in later if m["List-Unsubscribe"] is not None]
    assert sorted(second_wave) == ["ana@example.org", "chloe@example.org"]
    [acknowledgement] = [m for m in later if m["List-Unsubscribe"] is None]
    assert acknowledgement["To"] == "benoit@example.org"  # the opt-out is confirmed, once
    report = json.loads(
        _ok(runner.invoke(args=["campaigns", "show", str(second_id), "--json"])).stdout
    )
    assert report["audience"] == 2
    assert report["sent"] == 2
    assert report["excluded"] == {"unsubscribed": 1}
    first = json.loads(
        _ok(runner.invoke(args=["campaigns", "show", str(first_id), "--json"])).stdout
    )
    assert first["unsubscribes"] == 1
