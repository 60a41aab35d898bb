"""Request logs: keep working links and addresses out of the request lines that get logged.

A token in a log is a working link and an address is personal data; each blueprint that
puts one in its paths installs a ``RedactedInRequestLogs`` subclass on the loggers below.
"""

from __future__ import annotations

import logging
import re

# Loggers that write request paths: the dev server's, gunicorn's access log and Flask's own.
PATH_LOGGERS = ("werkzeug", "gunicorn.access", "prefsvc")


class RedactedInRequestLogs(logging.Filter):
    """Replace what ``PATTERN`` matches in a logged message with ``REPLACEMENT``."""

    PATTERN: re.Pattern[str]
    REPLACEMENT: str

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self.PATTERN.sub(self.REPLACEMENT, message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True

    @classmethod
    def install(cls) -> None:
        """Add this filter to every request-path logger once, however often an app is made."""
        for name in PATH_LOGGERS:
            logger = logging.getLogger(name)
            if not any(isinstance(f, cls) for f in logger.filters):
                logger.addFilter(cls())
