"""A real Postfix instance of the test's own: its config and queue in a temporary directory.

``postfix -c DIR start`` runs a second master next to (never instead of) any system Postfix:
SMTP on a free loopback port, mail for ``nowhere.test`` delivered locally to mailboxes that do
not exist (so Postfix bounces it and writes its own DSN), ``refused.test`` refused by policy
(``error:5.7.1``: refused at RCPT time, as a blocklist would), ``alive.test`` accepted and
discarded, and everything for the bounce domain handed over LMTP to ``prefsvc inbound serve``,
with the lines the README gives a user: ``transport_maps``, ``relay_domains``,
``relay_recipient_maps`` and ``recipient_delimiter = +``. Starting it needs root, as any
Postfix does.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

MAILBOXES_MISSING = "nowhere.test"
POLICY_REFUSED = "refused.test"
ALIVE = "alive.test"
REFUSAL = "5.7.1 Service unavailable; client [192.0.2.7] blocked using zen.spamhaus.org"

_MASTER = """\
127.0.0.1:{smtp_port} inet n - n - - smtpd
pickup    unix  n - n 60   1 pickup
cleanup   unix  n - n -    0 cleanup
qmgr      unix  n - n 300  1 qmgr
rewrite   unix  - - n -    - trivial-rewrite
bounce    unix  - - n -    0 bounce
defer     unix  - - n -    0 bounce
trace     unix  - - n -    0 bounce
verify    unix  - - n -    1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n -    - proxymap
showq     unix  n - n -    - showq
error     unix  - - n -    - error
retry     unix  - - n -    - error
discard   unix  - - n -    - discard
local     unix  - n n -    - local
lmtp      unix  - - n -    - lmtp
anvil     unix  - - n -    1 anvil
scache    unix  - - n -    1 scache
postlog   unix-dgram n - n - 1 postlogd
"""


class Postfix:
    """Start with ``start()`` (or as a context manager); ``url`` is a MAIL_URL for it."""

    def __init__(self, *, bounce_domain: str, lmtp_port: int) -> None:
        self.bounce_domain = bounce_domain
        self.lmtp_port = lmtp_port
        self.smtp_port = free_port()
        # Postfix's daemons run as the postfix user: the whole path must be searchable.
        self.root = Path(tempfile.mkdtemp(prefix="prefsvc-postfix-"))
        self.root.chmod(0o755)
        self.config = self.root / "conf"
        self.log = self.root / "maillog"

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.smtp_port}"

    def start(self) -> None:
        if os.geteuid() != 0:
            raise RuntimeError("starting a Postfix instance needs root (postfix -c DIR start)")
        self.config.mkdir()
        (self.root / "queue").mkdir()  # postfix start makes its subdirectories
        data = self.root / "data"
        data.mkdir()
        owner = pwd.getpwnam("postfix")
        os.chown(data, owner.pw_uid, owner.pw_gid)
        (self.config / "main.cf").write_text(self._main_cf())
        (self.config / "master.cf").write_text(_MASTER.format(smtp_port=self.smtp_port))
        self._postfix("start")

    def stop(self) -> None:
        try:
            self._postfix("stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Postfix:
        try:
            self.start()
        except BaseException:
            shutil.rmtree(self.root, ignore_errors=True)
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def log_text(self) -> str:
        """Postfix's own log of this instance (for a failing test's message)."""
        return self.log.read_text() if self.log.exists() else ""

    def _postfix(self, command: str) -> None:
        done = subprocess.run(
            ["postfix", "-c", str(self.config), command],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if done.returncode != 0:
            raise RuntimeError(f"postfix {command} failed: {done.stderr}{self.log_text()}")

    def _main_cf(self) -> str:
        lmtp = f"lmtp:inet:127.0.0.1:{self.lmtp_port}"
        return f"""\
compatibility_level = 3.6
queue_directory = {self.root / "queue"}
data_directory = {self.root / "data"}
maillog_file = {self.log}
maillog_file_prefixes = {self.root}
myhostname = mx.postfix.test
mydomain = postfix.test
myorigin = $myhostname
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtp_dns_support_level = disabled
biff = no
# Local mailboxes that do not exist: accepted at RCPT, then bounced by local(8) (5.1.1).
mydestination = {MAILBOXES_MISSING}
local_recipient_maps =
alias_maps =
alias_database =
# The README's lines for the bounce domain.
recipient_delimiter = +
relay_domains = {self.bounce_domain}
relay_recipient_maps = inline:{{ bounces@{self.bounce_domain}=ok,
  unsubscribe@{self.bounce_domain}=ok }}
transport_maps = inline:{{ {self.bounce_domain}={lmtp}, {ALIVE}=discard:,
  {{ {POLICY_REFUSED} = error:{REFUSAL} }} }}
# Retry a handover soon rather than in minutes (a test cannot wait for the defaults).
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
