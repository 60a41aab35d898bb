"""``prefsvc inbound``: take in the mail that comes back (bounces, complaints, unsubscribes).

``process`` reads one message (a pipe transport, or by hand); ``serve`` is the LMTP server
behind the MTA's transport map; ``imap`` polls a mailbox (``INBOUND_IMAP_URL``). ``process``
and ``imap`` call ``intake.receive`` and commit per message; ``serve`` commits the messages
that arrived together in one transaction (``take_group``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import click
from flask import Flask, current_app

from prefsvc import clock
from prefsvc.commands.group import DomainGroup
from prefsvc.extensions import db
from prefsvc.inbound import imap, intake, lmtp, policy
from prefsvc.mail import kit
from prefsvc.settings import current_settings

log = logging.getLogger(__name__)
group = DomainGroup("inbound", help="Mail that comes back: bounces, complaints, unsubscribes.")


def receive_now(raw: bytes, recipient: str | None) -> intake.Received:
    """Receive one message in the app context in force, and commit."""
    taking = _intake()
    return take_now(intake.read(raw, recipient, taking), taking.rules)


def take_now(read: intake.Read, rules: policy.Rules) -> intake.Received:
    """Keep and act on one message already read, in the app context in force, and commit."""
    try:
        received = intake.take(db.session, read, now=clock.now(), today=clock.today(), rules=rules)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return received


def _intake() -> intake.Intake:
    settings = current_settings()
    return intake.Intake.from_settings(settings, kit.mail_domain(settings))


def receive_group(messages: Sequence[tuple[bytes, str]]) -> list[str | Exception]:
    """Receive messages in one transaction in the app context in force; return the outcomes."""
    taking = _intake()
    reads = [intake.read(raw, recipient, taking) for raw, recipient in messages]
    return take_group(reads, taking.rules)


def take_group(reads: Sequence[intake.Read], rules: policy.Rules) -> list[str | Exception]:
    """Keep and act on messages already read, in one transaction; return the outcomes.

    When the group fails (a report a concurrent intake kept first, a deadlock between two
    groups, one message the code cannot take), it is rolled back and each message is taken
    in a transaction of its own, as ``take_now`` does: one bad message fails alone, with
    its exception in its place.
    """
    if len(reads) > 1:
        try:
            received = intake.take_all(
                db.session, reads, now=clock.now(), today=clock.today(), rules=rules
            )
            db.session.commit()
            return [one.outcome for one in received]
        except Exception as exc:  # noqa: BLE001 - taken again one by one below
            db.session.rollback()
            log.info("a group of %d taken one by one: %s", len(reads), type(exc).__name__)
    outcomes: list[str | Exception] = []
    for read in reads:
        try:
            outcomes.append(take_now(read, rules).outcome)
        except Exception as exc:  # noqa: BLE001 - answered 451: the MTA sends it again
            outcomes.append(exc)
    return outcomes


def server(
    app: Flask,
    *,
    host: str,
    port: int,
    threads: int = 8,
    handed: socket.socket | None = None,
    on_closed: Callable[[], None] | None = None,
) -> lmtp.LmtpController:
    """Return the LMTP controller of ``serve``: each message read (classified) as it arrives,
    each group of them kept in an app context."""
    with app.app_context():
        taking = _intake()

    def read(raw: bytes, recipient: str) -> intake.Read:
        return intake.read(raw, recipient, taking)

    def deliver(reads: Sequence[intake.Read]) -> list[str | Exception]:
        with app.app_context():
            try:
                return take_group(reads, taking.rules)
            finally:
                db.session.remove()

    return lmtp.controller(
        deliver,
        host=host,
        port=port,
        threads=threads,
        read=read,
        handed=handed,
        on_closed=on_closed,
    )


@group.command("process")
@click.argument("file", required=False, type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--recipient",
    help="The envelope recipient (bounces+TOKEN@…); default: read from Delivered-To/To.",
)
def process(file: Path | None, recipient: str | None) -> None:
    """Take one RFC 5322 message from FILE or stdin; exit 0 when kept or knowingly ignored."""
    try:
        raw = file.read_bytes() if file is not None else sys.stdin.buffer.read()
    except OSError as exc:
        raise click.ClickException(f"cannot read {file}: {exc.strerror or exc}") from None
    if not raw.strip():
        raise click.ClickException("empty message")
    received = receive_now(raw, recipient)
    click.echo(f"{received.kind}: {received.outcome}")


@group.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8024, show_default=True)
@click.option(
    "--threads",
    type=click.IntRange(1, 64),
    default=8,
    show_default=True,
    help="Messages taken in at once per process (those that arrive together are kept in one "
    "database transaction); with --processes, match processes x threads to the MTA's LMTP "
    "concurrency (Postfix: lmtp_destination_concurrency_limit).",
)
@click.option(
    "--processes",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Server processes: classifying is CPU work, so use one per core. The supervisor "
    "listens and hands each connection to the next process in turn.",
)
def serve(host: str, port: int, threads: int, processes: int) -> None:
    """Run the LMTP server (RFC 2033) the MTA hands mail for BOUNCE_DOMAIN to."""
    app = current_app._get_current_object()
    if processes == 1:
        _serve(app, host=host, port=port, threads=threads)
        return
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        listener = socket.create_server((host, port), family=family, backlog=128)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    children, channels = [], []
    for _ in range(processes):
        ours, theirs = socket.socketpair()
        pid = os.fork()
        if pid == 0:  # a server process: its own database connections, no listener
            code = 1
            try:
                listener.close()
                ours.close()
                for channel in channels:
                    channel.close()
                db.engine.dispose(close=False)
                _serve(app, host=host, port=port, threads=threads, handed=theirs)
                code = 0
            except Exception as exc:  # noqa: BLE001 - said once, then the supervisor stops
                click.echo(f"LMTP server process failed: {type(exc).__name__}: {exc}", err=True)
            finally:
                os._exit(code)
        theirs.close()
        children.append(pid)
        channels.append(ours)
    threading.Thread(target=lmtp.hand_out, args=(listener, channels), daemon=True).start()
    click.echo(f"LMTP on {host}:{port}: {processes} processes", err=True)
    sys.exit(_supervise(children))


def _serve(
    app: Flask, *, host: str, port: int, threads: int, handed: socket.socket | None = None
) -> None:
    """Serve until SIGTERM, Ctrl-C or (for a process of several) the supervisor's end, then
    finish the messages in hand."""
    stop = threading.Event()
    controller = server(
        app, host=host, port=port, threads=threads, handed=handed, on_closed=stop.set
    )
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    controller.start()
    if handed is None:
        click.echo(f"LMTP on {host}:{port}", err=True)
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()
        controller.handler.close()


def _supervise(children: list[int]) -> int:
    """Wait for the server processes; pass SIGTERM on; when one dies, stop the others.

    Return the exit status: 0 after a requested stop, 1 when a process died on its own (the
    service manager restarts the whole group).
    """
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    status = 0
    alive = set(children)
    while alive:
        try:
            pid, code = os.wait()
        except KeyboardInterrupt:  # the terminal sent SIGINT to every process of the group
            stopping = True
            continue
        except ChildProcessError:
            break
        alive.discard(pid)
        if not stopping:
            click.echo(f"LMTP server process {pid} ended (status {code}); stopping", err=True)
            status = 1
            stop()
    return status


@group.command("imap")
@click.option("--loop", is_flag=True, help="Keep polling until stopped (SIGTERM or Ctrl-C).")
@click.option(
    "--interval",
    type=click.IntRange(5, 3600),
    default=60,
    show_default=True,
    help="Seconds between polls with --loop.",
)
def imap_command(loop: bool, interval: int) -> None:
    """Poll INBOUND_IMAP_URL: take each message, then move it to the processed folder."""
    url = current_settings().inbound_imap_url
    if not url:
        raise click.ClickException("PREFSVC_INBOUND_IMAP_URL is not set")
    mailbox = imap.Mailbox.from_url(url)
    stop = threading.Event()
    if loop:
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    while True:
        try:
            report = imap.poll(mailbox, lambda raw: receive_now(raw, None))
        except (OSError, imap.IMAPError) as exc:
            if not loop:
                raise click.ClickException(f"IMAP {mailbox.host}: {imap.reason(exc)}") from None
            click.echo(f"IMAP {mailbox.host}: {imap.reason(exc)}; trying again", err=True)
        else:
            click.echo(f"taken {report.taken}, left {report.left}")
        if not loop:
            return
        try:
            if stop.wait(interval):
                return
        except KeyboardInterrupt:
            return
