"""The domain's error hierarchy: views, CLI commands and actors map these once."""

from __future__ import annotations


class PrefsvcError(Exception):
    """Base of every error the domain raises on purpose."""


class NotFound(PrefsvcError):
    """The thing asked for does not exist."""


class InvalidToken(PrefsvcError):
    """A link token is forged, truncated, expired or names nothing; callers never say which."""


class Suppressed(PrefsvcError):
    """The address is on the suppression list and may not be (re)added for marketing."""


class InvalidInput(PrefsvcError):
    """A value given by a user is not acceptable; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message


class ImportFileError(PrefsvcError):
    """An import file cannot be read as a whole; nothing was written."""


class ImportTooLarge(ImportFileError):
    """An import file is larger than ``IMPORT_MAX_BYTES``; nothing was read or written."""


class CampaignStateError(PrefsvcError):
    """The campaign is not in a state that allows this action."""


class TemporaryBatchFailure(PrefsvcError):
    """Part of a batch must be tried again later; ``retry_after_ms`` None means backoff."""

    def __init__(self, message: str, *, retry_after_ms: int | None = None) -> None:
        super().__init__(message)
        self.retry_after_ms = retry_after_ms


class RequestStateError(PrefsvcError):
    """A data-subject request is not in a state that allows this step."""


class InvalidFields(InvalidInput):
    """Several values given together are not acceptable: ``fields`` maps each to its reasons."""

    def __init__(self, fields: dict[str, list[str]]) -> None:
        first = next(iter(fields))
        super().__init__(first, fields[first][0])
        self.fields = fields

    def __str__(self) -> str:
        return "; ".join(f"{field}: {reason}" for field, rs in self.fields.items() for reason in rs)
