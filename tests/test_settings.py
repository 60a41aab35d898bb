"""Settings: embedded defaults with no environment, one clear line for a bad value."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from prefsvc.settings import Settings, SettingsError, parse_rate


def test_no_settings_means_everything_embedded_under_instance(tmp_path):
    settings = Settings.from_env({}, instance_path=tmp_path / "instance")
    assert settings.database_url == f"sqlite:///{tmp_path / 'instance' / 'prefsvc.db'}"
    assert settings.broker_url is None and settings.embedded_queue
    assert settings.mail_url == f"maildir:{tmp_path / 'instance' / 'outbox'}"
    assert settings.base_url == "http://127.0.0.1:5000"
    assert settings.marketing_window_years == 5
    assert str(settings.timezone) == "Europe/Brussels"


def test_development_keys_are_generated_once_and_kept(tmp_path):
    first = Settings.from_env({}, instance_path=tmp_path)
    second = Settings.from_env({}, instance_path=tmp_path)
    assert first.secret_keys == second.secret_keys
    assert (tmp_path / "secret_keys").stat().st_mode & 0o077 == 0


def test_secret_keys_are_read_oldest_first(tmp_path):
    env = {"PREFSVC_SECRET_KEYS": "oldest-key-0123456789, newest-key-0123456789"}
    settings = Settings.from_env(env, instance_path=tmp_path)
    assert settings.secret_keys == ("oldest-key-0123456789", "newest-key-0123456789")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DATABASE_URL", "mysql://x/y"),
        ("BROKER_URL", "kafka://localhost"),
        ("MAIL_URL", "ftp://mail"),
        ("MAIL_URL", "smtp://:25"),
        ("BASE_URL", "news.example.org"),
        ("SECRET_KEYS", "short"),
        ("MAIL_FROM", "not an address"),
        ("MARKETING_WINDOW_YEARS", "five"),
        ("MARKETING_WINDOW_YEARS", "0"),
        ("TIMEZONE", "Europe/Antwerp"),
        ("DKIM_DOMAIN", "example.org"),
        ("RATE_LIMIT_TOKEN", "often"),
        ("RATE_LIMIT_SIGNIN_ADDRESS", "5 per fortnight"),
        ("REPERMISSION_DAYS", "0"),
        ("REPERMISSION_REMINDER_DAYS", "60"),  # not before the request
        ("RATE_LIMIT", "fast"),
        ("DOMAIN_RATE_LIMIT", "10/day"),
        ("RETRY_MIN_BACKOFF", "0"),
        ("LOG_FORMAT", "xml"),
        ("BOUNCE_DOMAIN", "localhost"),
        ("BOUNCE_DOMAIN", "bounces@example.org"),
        ("BOUNCE_SCORE_LIMIT", "0"),
        ("INBOUND_KEEP_DAYS", "forever"),
        ("WEBHOOK_LOG_DAYS", "0"),
        ("SIGNUP_CONFIRM_HOURS", "0"),
        ("SIGNUP_ALLOWED_ORIGINS", "www.example.org"),
        ("SIGNUP_ALLOWED_ORIGINS", "https://www.example.org/news"),
        ("RATE_LIMIT_SIGNUP_CLIENT", "many"),
        ("PRIVACY_URL", "privacy.html"),
        ("INBOUND_IMAP_URL", "pop3://user:secret@mail.example.org"),
        ("INBOUND_IMAP_URL", "imaps://mail.example.org/INBOX"),
        ("INBOUND_IMAP_URL", "imaps://user:secret@mail.example.org/INBOX?processed=INBOX"),
        ("WEBHOOK_RETRY_HOURS", "0"),
        ("WEBHOOK_TIMEOUT", "61"),
        ("WEBHOOK_ALERT_TO", "ops"),
    ],
)
def test_a_bad_value_names_the_variable(tmp_path, name, value):
    with pytest.raises(SettingsError) as error:
        Settings.from_env({f"PREFSVC_{name}": value}, instance_path=tmp_path)
    assert str(error.value).startswith(f"PREFSVC_{name}: ")
    assert "\n" not in str(error.value)


def test_repermission_mails_go_sixty_and_fourteen_days_ahead_unless_told(tmp_path):
    default = Settings.from_env({}, instance_path=tmp_path)
    told = Settings.from_env(
        {"PREFSVC_REPERMISSION_DAYS": "90", "PREFSVC_REPERMISSION_REMINDER_DAYS": "30"},
        instance_path=tmp_path,
    )
    assert (default.repermission_days, default.repermission_reminder_days) == (60, 14)
    assert (told.repermission_days, told.repermission_reminder_days) == (90, 30)


def test_rate_limits_and_retry_backoff_are_read_per_unit_and_checked(tmp_path):
    env = {
        "PREFSVC_RATE_LIMIT": "600/min",
        "PREFSVC_DOMAIN_RATE_LIMIT": "3600/h",
        "PREFSVC_RETRY_MIN_BACKOFF": "5",
        "PREFSVC_RETRY_MAX_BACKOFF": "60",
    }
    settings = Settings.from_env(env, instance_path=tmp_path)
    assert (settings.rate_limit, settings.domain_rate_limit) == (10.0, 1.0)
    assert (settings.retry_min_backoff_seconds, settings.retry_max_backoff_seconds) == (5, 60)
    unlimited = Settings.from_env({}, instance_path=tmp_path)
    assert (unlimited.rate_limit, unlimited.domain_rate_limit) == (None, None)
    with pytest.raises(SettingsError, match="^PREFSVC_RETRY_MAX_BACKOFF: "):
        Settings.from_env(env | {"PREFSVC_RETRY_MAX_BACKOFF": "2"}, instance_path=tmp_path)


def test_bad_setting_stops_the_cli_with_one_line(tmp_path):
    prefsvc = Path(sys.executable).parent / "prefsvc"
    result = subprocess.run(
        [str(prefsvc), "topics", "list"],
        env={"PREFSVC_INSTANCE_PATH": str(tmp_path), "PREFSVC_TIMEZONE": "Mars/Olympus"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "Error: PREFSVC_TIMEZONE: unknown time zone 'Mars/Olympus'"
    ]


def test_rate_limits_have_defaults_and_can_be_set(tmp_path):
    defaults = Settings.from_env({}, instance_path=tmp_path)
    assert defaults.rate_limit_signin_address == "5 per hour"
    assert defaults.rate_limit_token == "20 per minute"
    chosen = Settings.from_env(
        {"PREFSVC_RATE_LIMIT_SIGNIN_CLIENT": "10 per hour; 50 per day"}, instance_path=tmp_path
    )
    assert chosen.rate_limit_signin_client == "10 per hour; 50 per day"


@pytest.mark.parametrize(
    ("text", "per_second"),
    [("200/s", 200.0), ("600/min", 10.0), ("7200/h", 2.0), ("12.5", 12.5), (" 30 / MIN ", 0.5)],
)
def test_rates_are_read_per_second_minute_or_hour(text, per_second):
    assert parse_rate(text) == pytest.approx(per_second)


@pytest.mark.parametrize("text", ["0/s", "-1/s", "fast", "10/day", "inf/s", "nan"])
def test_a_rate_that_is_not_a_positive_number_per_unit_is_refused(text):
    with pytest.raises(ValueError):
        parse_rate(text)


def test_bounce_settings_default_to_no_verp_and_mailman_like_scoring(tmp_path):
    default = Settings.from_env({}, instance_path=tmp_path)
    assert (default.bounce_domain, default.bounce_score_limit, default.bounce_stale_days) == (
        None,
        5,
        7,
    )
    assert default.inbound_keep_days == 30
    given = Settings.from_env(
        {"PREFSVC_BOUNCE_DOMAIN": "Bounces.Example.ORG."}, instance_path=tmp_path
    )
    assert given.bounce_domain == "bounces.example.org"


def test_the_sender_identity_has_demo_values_and_can_be_set(tmp_path):
    demo = Settings.from_env({}, instance_path=tmp_path)
    assert demo.organisation_name and demo.organisation_address
    assert demo.privacy_url.startswith("https://") and demo.logo_url is None
    env = {
        "PREFSVC_ORGANISATION_NAME": "Haven vzw",
        "PREFSVC_ORGANISATION_ADDRESS": "Kaai 1, 2000 Antwerpen",
        "PREFSVC_PRIVACY_URL": "https://haven.example/privacy",
        "PREFSVC_LOGO_URL": "https://haven.example/logo.png",
    }
    own = Settings.from_env(env, instance_path=tmp_path)
    assert (own.organisation_name, own.organisation_address) == env_values(env)[:2]
    assert (own.privacy_url, own.logo_url) == env_values(env)[2:]


def env_values(env: dict[str, str]) -> tuple[str, ...]:
    return tuple(env.values())


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PRIVACY_URL", "/privacy"),
        ("LOGO_URL", "javascript:alert(1)"),
        ("ORGANISATION_ADDRESS", "Kaai 1\nAntwerpen"),
    ],
)
def test_a_bad_sender_identity_names_its_variable(tmp_path, name, value):
    with pytest.raises(SettingsError, match=f"^PREFSVC_{name}: "):
        Settings.from_env({f"PREFSVC_{name}": value}, instance_path=tmp_path)


def test_sign_up_settings_default_to_48_hours_and_no_other_site(tmp_path):
    settings = Settings.from_env({}, instance_path=tmp_path)
    assert settings.signup_confirm_hours == 48
    assert settings.signup_allowed_origins == ()
    told = Settings.from_env(
        {
            "PREFSVC_SIGNUP_CONFIRM_HOURS": "24",
            "PREFSVC_SIGNUP_ALLOWED_ORIGINS": "https://WWW.example.org/, http://localhost:8080",
            "PREFSVC_PRIVACY_URL": "https://www.example.org/privacy",
        },
        instance_path=tmp_path,
    )
    assert told.signup_confirm_hours == 24
    assert told.signup_allowed_origins == ("https://www.example.org", "http://localhost:8080")
    assert told.privacy_url == "https://www.example.org/privacy"


def test_webhooks_retry_three_days_wait_five_seconds_and_alert_nobody_unless_told(tmp_path):
    default = Settings.from_env({}, instance_path=tmp_path)
    assert (default.webhook_retry_hours, default.webhook_timeout_seconds) == (72, 5)
    assert default.webhook_alert_to is None
    assert default.webhook_log_days == 30
    told = Settings.from_env(
        {
            "PREFSVC_WEBHOOK_RETRY_HOURS": "24",
            "PREFSVC_WEBHOOK_ALERT_TO": "Ops <ops@example.org>",
            "PREFSVC_WEBHOOK_LOG_DAYS": "7",
        },
        instance_path=tmp_path,
    )
    assert (told.webhook_retry_hours, told.webhook_alert_to) == (24, "Ops <ops@example.org>")
    assert told.webhook_log_days == 7
