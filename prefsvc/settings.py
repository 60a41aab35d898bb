"""Settings read once from ``PREFSVC_*`` environment variables and validated at start-up.

With no variable set, everything runs embedded under ``./instance/``: SQLite, an in-process
queue and a Maildir outbox. Tests build their own :class:`Settings` instead of touching the
environment.
"""

from __future__ import annotations

import math
import os
import re
import secrets
from dataclasses import dataclass, field, replace
from email.utils import parseaddr
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from limits import parse_many
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

PREFIX = "PREFSVC_"
MAIL_SCHEMES = ("maildir", "smtp", "smtp+starttls", "smtps")
BROKER_SCHEMES = ("redis", "rediss", "amqp", "amqps")


class SettingsError(Exception):
    """A setting is missing or wrong; the message is one line naming the variable."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"{PREFIX}{name}: {problem}")
        self.name = name


# The demo's sender; a real deployment names itself (EU rules on commercial mail expect it).
DEMO_ORGANISATION_NAME = "Havenopleidingen Antwerpen (demo)"
DEMO_ORGANISATION_ADDRESS = "Havenstraat 1, 2000 Antwerpen, België"
DEMO_PRIVACY_URL = "https://www.example.org/privacy"


@dataclass(frozen=True)
class Settings:
    """Everything prefsvc can be told from outside, already parsed and checked."""

    instance_path: Path
    database_url: str
    broker_url: str | None
    mail_url: str
    base_url: str
    secret_keys: tuple[str, ...]
    suppression_key: str
    mail_from: str
    marketing_window_years: int = 5
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Europe/Brussels"))
    dkim_domain: str | None = None
    dkim_selector: str | None = None
    dkim_key_file: Path | None = None
    batch_size: int = 100
    worker_processes: int = 2
    worker_threads: int = 8
    queue_prefix: str = "prefsvc-"
    max_retries: int = 8
    batch_time_limit_ms: int = 600_000
    # A claimed delivery belongs to a live worker: one whose heartbeat is younger than this.
    lease_seconds: int = 30
    # The scheduler re-queues a sending campaign's queued deliveries after this long without
    # a claim or a job for them (its jobs were lost: broker restarted empty, demo killed).
    requeue_after_seconds: int = 60
    # /healthz and the admin report jobs held in the outbox longer than this (no broker).
    outbox_stale_seconds: int = 60
    retention_grace_days: int = 30
    rights_due_days: int = 30
    # --- recipient pages: rate limits (Flask-Limiter notation, e.g. "20 per minute; 200 per day")
    rate_limit_token_client: str = "300 per minute"
    rate_limit_one_click_client: str = "3000 per minute"
    rate_limit_token: str = "20 per minute"
    rate_limit_signin_client: str = "30 per hour"
    rate_limit_signin_address: str = "5 per hour"
    # --- re-permission (issue 6) ---
    repermission_days: int = 60
    repermission_reminder_days: int = 14
    # --- sending: rate limits and retry backoff ---
    rate_limit: float | None = None  # messages per second, all workers together
    domain_rate_limit: float | None = None  # messages per second per recipient domain
    retry_min_backoff_seconds: int = 1
    retry_max_backoff_seconds: int = 300
    log_format: str = "text"  # worker logs: text or json (one object per line)
    # --- mail that comes back (issue 17) ---
    bounce_domain: str | None = None  # unset: no VERP, the envelope sender is MAIL_FROM's
    bounce_score_limit: int = 5  # soft bounces (one a day at most) that exclude an address
    bounce_stale_days: int = 7  # quiet days after which the soft-bounce score starts again
    inbound_keep_days: int = 30  # raw returned messages are deleted after this many days
    # --- who is writing (issue 18): the house mail layout and the recipient pages ---
    organisation_name: str = DEMO_ORGANISATION_NAME
    organisation_address: str = DEMO_ORGANISATION_ADDRESS
    privacy_url: str = DEMO_PRIVACY_URL
    logo_url: str | None = None  # unset: the organisation's name stands in for a logo
    # --- public sign-up with double opt-in (issue 20) ---
    signup_confirm_hours: int = 48  # the confirmation link's life; then the request is deleted
    signup_allowed_origins: tuple[str, ...] = ()  # other sites that may embed or POST the form
    rate_limit_signup_client: str = "20 per hour"
    rate_limit_signup_address: str = "3 per hour"
    inbound_imap_url: str | None = None  # imaps://user:pass@host/INBOX?processed=Processed
    inbound_imap_seconds: int = 60  # the scheduler polls INBOUND_IMAP_URL at most this often
    # --- campaign templates under limits (issue 19) ---
    template_render_seconds: float = 1.0  # one render of a template, sample or recipient
    template_max_bytes: int = 1_000_000  # one rendered body, and any value inside it
    metrics_cache_seconds: int = 15  # /metrics reads the database at most this often
    # --- webhooks (issue 20) ---
    webhook_retry_hours: int = 72  # retries per delivery, and failures that disable an endpoint
    webhook_timeout_seconds: int = 5  # to wait for a receiver's answer
    webhook_alert_to: str | None = None  # who is mailed when an endpoint is disabled
    webhook_log_days: int = 30  # delivered and given-up deliveries are deleted after this
    # --- contact imports (issue 19) ---
    import_max_bytes: int = 256_000_000  # largest CSV file an import takes (admin, API, CLI)
    import_keep_days: int = 30  # finished import jobs and their row problems are deleted after this
    testing: bool = False

    @property
    def embedded_queue(self) -> bool:
        return self.broker_url is None

    @property
    def dkim_enabled(self) -> bool:
        return self.dkim_domain is not None

    def with_(self, **changes: object) -> Settings:
        """Return a copy with some fields changed (tests and the demo use this)."""
        return replace(self, **changes)

    @classmethod
    def from_env(
        cls,
        env: os._Environ[str] | dict[str, str] | None = None,
        *,
        instance_path: Path | None = None,
    ) -> Settings:
        """Read and validate every ``PREFSVC_*`` variable; raise SettingsError on the first bad."""
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = env.get(PREFIX + name)
            return value.strip() if value is not None and value.strip() != "" else None

        instance = Path(get("INSTANCE_PATH") or instance_path or Path.cwd() / "instance").resolve()

        database_url = get("DATABASE_URL") or f"sqlite:///{instance / 'prefsvc.db'}"
        _check_database_url(database_url)

        broker_url = get("BROKER_URL")
        if broker_url is not None and urlsplit(broker_url).scheme not in BROKER_SCHEMES:
            raise SettingsError("BROKER_URL", "must start with redis:// or amqp:// (or be unset)")

        mail_url = get("MAIL_URL") or f"maildir:{instance / 'outbox'}"
        _check_mail_url(mail_url)

        base_url = (get("BASE_URL") or "http://127.0.0.1:5000").rstrip("/")
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise SettingsError("BASE_URL", "must be an absolute http:// or https:// URL")

        keys_text = get("SECRET_KEYS")
        if keys_text is None:
            keys = tuple(_instance_secret(instance / "secret_keys").splitlines())
        else:
            keys = tuple(k.strip() for k in keys_text.split(",") if k.strip())
        if not keys or any(len(k) < 16 for k in keys):
            raise SettingsError("SECRET_KEYS", "each key must be at least 16 characters")

        suppression_key = get("SUPPRESSION_KEY") or _instance_secret(instance / "suppression_key")
        if len(suppression_key) < 16:
            raise SettingsError("SUPPRESSION_KEY", "must be at least 16 characters")

        mail_from = get("MAIL_FROM") or "Newsletter <newsletter@localhost>"
        _check_address("MAIL_FROM", mail_from)

        years = _positive_int(get, "MARKETING_WINDOW_YEARS", 5, maximum=50)

        tz_name = get("TIMEZONE") or "Europe/Brussels"
        try:
            tz = ZoneInfo(tz_name)
        except (ZoneInfoNotFoundError, ValueError):
            raise SettingsError("TIMEZONE", f"unknown time zone {tz_name!r}") from None

        dkim = [get("DKIM_DOMAIN"), get("DKIM_SELECTOR"), get("DKIM_KEY_FILE")]
        if any(dkim) and not all(dkim):
            raise SettingsError(
                "DKIM_DOMAIN", "DKIM_DOMAIN, DKIM_SELECTOR and DKIM_KEY_FILE go together"
            )
        key_file = Path(dkim[2]) if dkim[2] else None
        if key_file is not None and not key_file.is_file():
            raise SettingsError("DKIM_KEY_FILE", f"no such file: {key_file}")

        # --- re-permission (issue 6) ---
        repermission_days = _positive_int(get, "REPERMISSION_DAYS", 60, maximum=365)
        reminder_days = _positive_int(get, "REPERMISSION_REMINDER_DAYS", 14, maximum=365)
        if reminder_days >= repermission_days:
            raise SettingsError(
                "REPERMISSION_REMINDER_DAYS",
                f"must be less than PREFSVC_REPERMISSION_DAYS ({repermission_days}),"
                f" got {reminder_days}",
            )
        # --- sending: rate limits and retry backoff ---
        rate_limit = _rate(get, "RATE_LIMIT")
        domain_rate_limit = _rate(get, "DOMAIN_RATE_LIMIT")
        min_backoff = _positive_int(get, "RETRY_MIN_BACKOFF", 1, maximum=3600)
        max_backoff = _positive_int(get, "RETRY_MAX_BACKOFF", 300, maximum=86_400)
        if max_backoff < min_backoff:
            raise SettingsError("RETRY_MAX_BACKOFF", "must not be less than RETRY_MIN_BACKOFF")
        log_format = (get("LOG_FORMAT") or "text").lower()
        if log_format not in ("text", "json"):
            raise SettingsError("LOG_FORMAT", f"must be text or json, got {log_format!r}")
        bounce_domain = _bounce_domain(get("BOUNCE_DOMAIN"))
        organisation_name = _one_line(
            "ORGANISATION_NAME", get("ORGANISATION_NAME") or DEMO_ORGANISATION_NAME, 200
        )
        organisation_address = _one_line(
            "ORGANISATION_ADDRESS", get("ORGANISATION_ADDRESS") or DEMO_ORGANISATION_ADDRESS, 300
        )
        privacy_url = _web_url("PRIVACY_URL", get("PRIVACY_URL") or DEMO_PRIVACY_URL)
        logo_url = get("LOGO_URL")
        if logo_url is not None:
            logo_url = _web_url("LOGO_URL", logo_url)
        # --- public sign-up (issue 20) ---
        origins = _origins(get("SIGNUP_ALLOWED_ORIGINS"))
        inbound_imap_url = _imap_url(get("INBOUND_IMAP_URL"))
        webhook_alert_to = get("WEBHOOK_ALERT_TO")
        if webhook_alert_to is not None:
            _check_address("WEBHOOK_ALERT_TO", webhook_alert_to)

        return cls(
            instance_path=instance,
            database_url=database_url,
            broker_url=broker_url,
            mail_url=mail_url,
            base_url=base_url,
            secret_keys=keys,
            suppression_key=suppression_key,
            mail_from=mail_from,
            marketing_window_years=years,
            timezone=tz,
            dkim_domain=dkim[0],
            dkim_selector=dkim[1],
            dkim_key_file=key_file,
            batch_size=_positive_int(get, "BATCH_SIZE", 100, maximum=10_000),
            worker_processes=_positive_int(get, "WORKER_PROCESSES", 2, maximum=256),
            worker_threads=_positive_int(get, "WORKER_THREADS", 8, maximum=256),
            queue_prefix=_queue_prefix(get("QUEUE_PREFIX") or "prefsvc-"),
            max_retries=_positive_int(get, "MAX_RETRIES", 8, maximum=100),
            lease_seconds=_positive_int(get, "LEASE_SECONDS", 30, maximum=3600),
            requeue_after_seconds=_positive_int(get, "REQUEUE_AFTER_SECONDS", 60, maximum=86_400),
            outbox_stale_seconds=_positive_int(get, "OUTBOX_STALE_SECONDS", 60, maximum=86_400),
            retention_grace_days=_positive_int(get, "RETENTION_GRACE_DAYS", 30, maximum=3650),
            rights_due_days=_positive_int(get, "RIGHTS_DUE_DAYS", 30, maximum=365),
            # --- recipient pages: rate limits
            rate_limit_token_client=_rate_limit(get, "RATE_LIMIT_TOKEN_CLIENT", "300 per minute"),
            rate_limit_one_click_client=_rate_limit(
                get, "RATE_LIMIT_ONE_CLICK_CLIENT", "3000 per minute"
            ),
            rate_limit_token=_rate_limit(get, "RATE_LIMIT_TOKEN", "20 per minute"),
            rate_limit_signin_client=_rate_limit(get, "RATE_LIMIT_SIGNIN_CLIENT", "30 per hour"),
            rate_limit_signin_address=_rate_limit(get, "RATE_LIMIT_SIGNIN_ADDRESS", "5 per hour"),
            # --- re-permission (issue 6) ---
            repermission_days=repermission_days,
            repermission_reminder_days=reminder_days,
            rate_limit=rate_limit,
            domain_rate_limit=domain_rate_limit,
            retry_min_backoff_seconds=min_backoff,
            retry_max_backoff_seconds=max_backoff,
            log_format=log_format,
            bounce_domain=bounce_domain,
            bounce_score_limit=_positive_int(get, "BOUNCE_SCORE_LIMIT", 5, maximum=100),
            bounce_stale_days=_positive_int(get, "BOUNCE_STALE_DAYS", 7, maximum=365),
            inbound_keep_days=_positive_int(get, "INBOUND_KEEP_DAYS", 30, maximum=3650),
            organisation_name=organisation_name,
            organisation_address=organisation_address,
            privacy_url=privacy_url,
            logo_url=logo_url,
            signup_confirm_hours=_positive_int(get, "SIGNUP_CONFIRM_HOURS", 48, maximum=24 * 30),
            signup_allowed_origins=origins,
            rate_limit_signup_client=_rate_limit(get, "RATE_LIMIT_SIGNUP_CLIENT", "20 per hour"),
            rate_limit_signup_address=_rate_limit(get, "RATE_LIMIT_SIGNUP_ADDRESS", "3 per hour"),
            inbound_imap_url=inbound_imap_url,
            inbound_imap_seconds=_positive_int(get, "INBOUND_IMAP_SECONDS", 60, maximum=86_400),
            template_render_seconds=_positive_seconds(get, "TEMPLATE_RENDER_SECONDS", 1.0),
            template_max_bytes=_positive_int(
                get, "TEMPLATE_MAX_BYTES", 1_000_000, maximum=100_000_000
            ),
            metrics_cache_seconds=_positive_int(get, "METRICS_CACHE_SECONDS", 15, maximum=3600),
            webhook_retry_hours=_positive_int(get, "WEBHOOK_RETRY_HOURS", 72, maximum=720),
            webhook_timeout_seconds=_positive_int(get, "WEBHOOK_TIMEOUT", 5, maximum=60),
            webhook_alert_to=webhook_alert_to,
            webhook_log_days=_positive_int(get, "WEBHOOK_LOG_DAYS", 30, maximum=3650),
            import_max_bytes=_positive_int(
                get, "IMPORT_MAX_BYTES", 256_000_000, maximum=10_000_000_000
            ),
            import_keep_days=_positive_int(get, "IMPORT_KEEP_DAYS", 30, maximum=3650),
        )


def _positive_int(get, name: str, default: int, *, maximum: int) -> int:
    text = get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise SettingsError(name, f"must be a whole number, got {text!r}") from None
    if not 1 <= value <= maximum:
        raise SettingsError(name, f"must be between 1 and {maximum}, got {value}")
    return value


def _origins(text: str | None) -> tuple[str, ...]:
    """Read ``SIGNUP_ALLOWED_ORIGINS``: comma-separated ``scheme://host[:port]``, no path."""
    origins = []
    for item in (text or "").split(","):
        origin = item.strip().rstrip("/")
        if not origin:
            continue
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path:
            raise SettingsError(
                "SIGNUP_ALLOWED_ORIGINS",
                f"each origin must read like https://www.example.org, got {origin!r}",
            )
        origins.append(f"{parts.scheme}://{parts.netloc.lower()}")
    return tuple(origins)


def _positive_seconds(get, name: str, default: float, *, maximum: float = 60.0) -> float:
    text = get(name)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        raise SettingsError(name, f"must be a number of seconds, got {text!r}") from None
    if not 0 < value <= maximum:
        raise SettingsError(name, f"must be more than 0 and at most {maximum:g}, got {text}")
    return value


def _rate_limit(get, name: str, default: str) -> str:
    """Accept Flask-Limiter's notation: "N per second|minute|hour|day", several joined by ";"."""
    text = get(name) or default
    try:
        if not parse_many(text):
            raise ValueError(text)
    except ValueError:
        raise SettingsError(name, f"must read like '20 per minute', got {text!r}") from None
    return text


RATE_UNITS = {"s": 1.0, "sec": 1.0, "min": 60.0, "m": 60.0, "h": 3600.0, "hour": 3600.0}


def parse_rate(text: str) -> float:
    """Parse ``"200/s"``, ``"600/min"``, ``"5000/h"`` or a bare number (per second).

    The notation of ``PREFSVC_RATE_LIMIT`` and ``PREFSVC_DOMAIN_RATE_LIMIT``; the limiters
    (``prefsvc.mail.rate_limits``) only ever see the parsed messages per second.
    """
    count, _, unit = text.strip().partition("/")
    per = RATE_UNITS.get(unit.strip().lower() or "s")
    if per is None:
        raise ValueError(f"unknown unit {unit!r}: use /s, /min or /h")
    value = float(count)
    if not (value > 0 and math.isfinite(value)):
        raise ValueError("must be a number above 0")
    return value / per


def _rate(get, name: str) -> float | None:
    """Read a rate such as ``200/s``, ``600/min`` or ``5000/h``; unset means no limit."""
    text = get(name)
    if text is None:
        return None
    try:
        return parse_rate(text)
    except ValueError as exc:
        raise SettingsError(name, f"must be like 200/s, 600/min or 5000/h: {exc}") from None


def _one_line(name: str, text: str, maximum: int) -> str:
    """Accept one line of text (a name, a postal address written on one line)."""
    if any(c in text for c in "\r\n") or len(text) > maximum:
        raise SettingsError(name, f"must be one line of at most {maximum} characters")
    return text


def _web_url(name: str, text: str) -> str:
    """Accept an absolute http(s) URL: it is shown in mail, read far from our site."""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc or any(c in text for c in ' "<>'):
        raise SettingsError(name, f"must be an absolute http:// or https:// URL, got {text!r}")
    return text


def _queue_prefix(text: str) -> str:
    if not all(c.isalnum() or c in "-_." for c in text):
        raise SettingsError("QUEUE_PREFIX", "may hold only letters, digits, '-', '_' and '.'")
    return text


def _check_database_url(url: str) -> None:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise SettingsError("DATABASE_URL", "is not a SQLAlchemy URL") from None
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise SettingsError(
            "DATABASE_URL", "only sqlite:// and postgresql+psycopg:// are supported"
        )


def _check_mail_url(url: str) -> None:
    scheme, _, rest = url.partition(":")
    if scheme not in MAIL_SCHEMES or not rest:
        raise SettingsError(
            "MAIL_URL", "must be maildir:PATH, smtp://, smtp+starttls:// or smtps://"
        )
    if scheme != "maildir":
        parts = urlsplit(url)
        try:
            _ = parts.port  # urlsplit parses the port lazily
        except ValueError:
            raise SettingsError("MAIL_URL", "has an invalid port") from None
        if not parts.hostname:
            raise SettingsError("MAIL_URL", "needs a host, e.g. smtp://127.0.0.1:25")


_DOMAIN_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


def _imap_url(text: str | None) -> str | None:
    """Check the mailbox URL at start-up, so a typo is one line now rather than a failed poll."""
    if not text:
        return None
    from prefsvc.inbound.imap import Mailbox

    try:
        Mailbox.from_url(text)
    except ValueError as exc:
        raise SettingsError("INBOUND_IMAP_URL", str(exc)) from None
    return text


def _bounce_domain(text: str | None) -> str | None:
    """Accept a domain name (an IDN becomes its A-labels): mail to it must reach our LMTP."""
    if text is None:
        return None
    domain = text.strip().rstrip(".").lower()
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise SettingsError("BOUNCE_DOMAIN", f"is not a domain name: {text!r}") from None
    labels = domain.split(".")
    if len(domain) > 200 or len(labels) < 2 or not all(_DOMAIN_LABEL.fullmatch(x) for x in labels):
        raise SettingsError("BOUNCE_DOMAIN", f"must be a domain like bounces.example.org: {text!r}")
    return domain


def _check_address(name: str, value: str) -> None:
    """Accept ``Name <local@domain>``; a dotless domain such as localhost is fine for a sender."""
    _, address = parseaddr(value)
    local, at, domain = address.rpartition("@")
    if not (local and at and domain) or any(c in value for c in "\r\n"):
        raise SettingsError(name, f"is not an address like 'Name <news@example.org>': {value!r}")


def _instance_secret(path: Path) -> str:
    """Return a development secret kept in the instance folder, creating it once."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value


SETTINGS_KEY = "prefsvc.settings"


def current_settings() -> Settings:
    """Return the settings of the Flask app in context (views, commands, actors)."""
    # The one Flask touch: Settings itself is plain data, built and checked without an app.
    from flask import current_app

    return current_app.extensions[SETTINGS_KEY]
