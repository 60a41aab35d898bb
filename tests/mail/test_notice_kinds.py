"""The one table of notice kinds: every service mail a worker can send, however it started."""

from __future__ import annotations

import inspect

from prefsvc.mail import notice_kinds


def test_every_service_mail_is_listed_once():
    assert sorted(notice_kinds.KINDS) == [
        "optout_ack",
        "rectification_confirmed",
        "repermission_reminder",
        "repermission_request",
        "signin",
    ]


def test_every_builder_takes_the_time_from_its_caller():
    for kind, builder in notice_kinds.KINDS.items():
        parameters = inspect.signature(builder).parameters
        assert parameters["now"].kind is inspect.Parameter.KEYWORD_ONLY, kind
