"""A real IMAP server for tests: Debian's Dovecot with a config of its own in a temporary dir.

``dovecot -c FILE -F`` runs in the foreground as a child of the test, next to any system
Dovecot (its own ``base_dir`` and ``instance_name``), IMAP without TLS on a free loopback
port, one password for every user, Maildirs under the temporary directory. Starting it needs
root (Dovecot's master drops to its own users), as Postfix does.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

PASSWORD = "imap-test-secret"

_CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
instance_name = prefsvc-test-{port}
protocols = imap
listen = 127.0.0.1
log_path = {root}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = dovecot
default_login_user = dovenull
first_valid_uid = 1
passdb {{
  driver = static
  args = password={password}
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={root}/home/%u
}}
mail_location = maildir:~/Maildir
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
"""


class Dovecot:
    """A context manager; ``url(user, folder)`` is an ``INBOUND_IMAP_URL`` for a mailbox."""

    def __init__(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.root = Path(tempfile.mkdtemp(prefix="prefsvc-dovecot-"))
        self.root.chmod(0o755)  # the mail user (nobody) reaches its Maildir through it
        self._process: subprocess.Popen | None = None

    def url(self, user: str, query: str = "") -> str:
        return f"imap://{user}:{PASSWORD}@127.0.0.1:{self.port}/INBOX{query}"

    def client(self, user: str):
        from imapclient import IMAPClient

        client = IMAPClient("127.0.0.1", port=self.port, ssl=False, timeout=10)
        client.login(user, PASSWORD)
        return client

    def __enter__(self) -> Dovecot:
        if os.geteuid() != 0:
            raise RuntimeError("starting Dovecot needs root (its master drops to its own users)")
        for name in ("run", "state", "home"):
            (self.root / name).mkdir()
        shutil.chown(self.root / "home", "nobody", "nogroup")
        config = self.root / "dovecot.conf"
        config.write_text(_CONFIG.format(root=self.root, port=self.port, password=PASSWORD))
        self._process = subprocess.Popen(
            ["dovecot", "-c", str(config), "-F"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    self.__exit__()
                    raise RuntimeError(f"dovecot did not start: {self.log_text()}") from None
                time.sleep(0.05)

    def log_text(self) -> str:
        log = self.root / "dovecot.log"
        return log.read_text() if log.exists() else ""

    def __exit__(self, *exc_info: object) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        shutil.rmtree(self.root, ignore_errors=True)
