"""Reading an import file as a stream: its size, its encoding (with evidence), its CSV records.

Nothing here holds the file: bytes are read ``READ_BYTES`` at a time, decoded incrementally,
cut into physical lines and handed to ``csv.reader`` one line at a time, so memory stays the
same whatever the file's size. A line longer than ``MAX_LINE_CHARS``, or a quoted field that
never closes (``csv.field_size_limit``), refuses the file instead of growing.

The encoding is decided per file, on evidence gathered in one pass (``inspect``): valid UTF-8
(BOM or not) is UTF-8; bytes that are not UTF-8 in a file without a single UTF-8 multi-byte
sequence are Windows-1252; a file that has both, valid UTF-8 sequences and bytes UTF-8 cannot
hold, is refused naming the first bad line: decoding it either way would garble one half
(``AmÃ©lie``). The same pass parses every record, so a file refused as a whole is refused
before anything is written, and the count of rows it gives drives a job's progress.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from prefsvc.errors import ImportFileError, ImportTooLarge

# A block of 64 KiB is about 500 lines of contacts: its bytes, its text and its lines are
# held at once (with 1 MiB blocks that was 4.7 MB of a 5.6 MB working set), and smaller
# blocks read no faster.
READ_BYTES = 64 * 1024
MAX_LINE_CHARS = 1 << 20  # one physical line; a CSV of contacts has lines of a few hundred
NOT_TEXT = "not a UTF-8 or Windows-1252 text file"
UTF8, UTF8_BOM, CP1252 = "utf-8", "utf-8-sig", "cp1252"

# C0 control characters other than tab, line feed, carriage return and form feed: binary data.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
# Decoded with ``surrogateescape``, a byte UTF-8 cannot hold becomes U+DC80..U+DCFF ...
_NOT_UTF8 = re.compile("[\udc80-\udcff]")
# ... and a valid multi-byte sequence becomes any other non-ASCII character.
_UTF8_SEQUENCE = re.compile("[\u0080-\udc7f\udd00-\U0010ffff]")
# The five bytes Windows-1252 leaves undefined.
_UNDEFINED_1252 = re.compile("[\udc81\udc8d\udc8f\udc90\udc9d]")
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)")

Source = Path | bytes


@dataclass(frozen=True)
class FileFacts:
    """What the first pass learnt: the encoding to read with, the data rows, the size."""

    encoding: str
    rows: int
    size: int


def size_of(source: Source) -> int:
    return len(source) if isinstance(source, bytes) else source.stat().st_size


def check_size(size: int, max_bytes: int | None) -> None:
    """Refuse a file over ``max_bytes`` (``IMPORT_MAX_BYTES``) before reading any of it."""
    if max_bytes is not None and size > max_bytes:
        raise ImportTooLarge(
            f"the file is {megabytes(size)}, more than the import limit of {megabytes(max_bytes)}"
            " (PREFSVC_IMPORT_MAX_BYTES)"
        )


def megabytes(size: int) -> str:
    """A size as people read it: '286 bytes', '4.2 MB', '256 MB' (never '0.0 MB')."""
    if size < 100_000:
        return f"{size:,} bytes"
    return f"{size / 1_000_000:.1f} MB" if size < 10_000_000 else f"{size // 1_000_000} MB"


def open_source(source: Source) -> BinaryIO:
    return io.BytesIO(source) if isinstance(source, bytes) else source.open("rb")


def inspect(source: Source, *, max_bytes: int | None = None) -> tuple[FileFacts, list[str]]:
    """Read the whole file once; return its facts and its header cells, or refuse it.

    Raises ``ImportTooLarge`` over ``max_bytes`` and ``ImportFileError`` (naming the line)
    for binary data, a mixed or unknown encoding, an empty file or broken CSV.
    """
    size = size_of(source)
    check_size(size, max_bytes)
    evidence = _Evidence()
    with open_source(source) as stream:
        if stream.read(len(codecs.BOM_UTF8)) == codecs.BOM_UTF8:
            evidence.first_utf8 = 1  # a BOM says UTF-8 as plainly as an accented letter
        stream.seek(0)
        decoder = codecs.getincrementaldecoder(UTF8)("surrogateescape")
        records = table(_lines(evidence.scan(_chunks(stream, decoder))))
        _, header = next(records)
        rows = sum(1 for _ in records)
    encoding = evidence.encoding()
    # The header was read as UTF-8 with escapes: read its bytes again in the file's encoding.
    if encoding == CP1252:
        header = [cell.encode(UTF8, "surrogateescape").decode(CP1252) for cell in header]
    return FileFacts(encoding=encoding, rows=rows, size=size), header


def records(source: Source, encoding: str) -> Iterator[tuple[int, list[str]]]:
    """Yield (first physical line, cells) of the header, then of every non-blank record."""
    with open_source(source) as stream:
        decoder = codecs.getincrementaldecoder(encoding)("strict")
        yield from table(_lines(_chunks(stream, decoder)))


def header_preview(source: Source, *, limit: int = 64 * 1024) -> list[str]:
    """Return the header cells from the file's first bytes, for the columns form.

    A glance that refuses obvious binary data at once; the job's first pass (``inspect``)
    decides the encoding and checks the whole file.
    """
    with open_source(source) as stream:
        head = stream.read(limit)
    try:
        text = codecs.getincrementaldecoder(UTF8_BOM)("strict").decode(head)
    except UnicodeDecodeError:
        text = head.decode(CP1252, "replace")
    if control := _CONTROL.search(text):
        line = _line_ends(text[: control.start()]) + 1
        raise ImportFileError(
            f"line {line}: {NOT_TEXT} (control byte 0x{ord(control.group()):02X})"
        )
    lines = _LINE.findall(text, 0, _line_end(text)) or [text]
    try:
        return next(table(iter(lines)))[1]
    except StopIteration:  # pragma: no cover - table raises first
        raise ImportFileError("the file is empty") from None


def table(lines: Iterator[str]) -> Iterator[tuple[int, list[str]]]:
    """Yield (first physical line, cells) of every non-blank record; the first is the header.

    The delimiter is ``;`` or ``,``, whichever the header line has more of; blank lines before
    the header are skipped and counted.
    """
    skipped = 0
    for first in lines:
        if first.strip():
            break
        skipped += 1
    else:
        raise ImportFileError("the file is empty")
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.reader(itertools.chain([first], lines), delimiter=delimiter)
    next_line = skipped + 1
    try:
        for cells in reader:
            line, next_line = next_line, skipped + reader.line_num + 1
            if any(cell.strip() for cell in cells):
                yield line, cells
    except csv.Error as exc:
        raise ImportFileError(f"line {skipped + reader.line_num}: not valid CSV ({exc})") from None


def _chunks(stream: BinaryIO, decoder: codecs.IncrementalDecoder) -> Iterator[str]:
    first = True
    while block := stream.read(READ_BYTES):
        text = decoder.decode(block)
        if first and text:
            text, first = text.removeprefix("\ufeff"), False
        yield text
    yield decoder.decode(b"", final=True)


def _lines(chunks: Iterator[str]) -> Iterator[str]:
    """Cut text into physical lines ending in CRLF, CR or LF, as a file opened with newline=''."""
    pending = ""
    number = 1
    for chunk in chunks:
        text = pending + chunk if pending else chunk
        end = _line_end(text)
        if end == len(text) and text.endswith("\r"):
            end = _line_end(text, len(text) - 1)  # a CR at the end may be half of a CRLF
        found = _LINE.findall(text, 0, end)
        yield from found
        number += len(found)
        pending = text[end:]
        if len(pending) > MAX_LINE_CHARS:
            raise ImportFileError(f"line {number}: longer than {MAX_LINE_CHARS:,} characters")
    if pending:
        yield pending


def _line_end(text: str, stop: int | None = None) -> int:
    """Return where the last whole line of ``text[:stop]`` ends (0: there is none).

    ``_LINE`` is only ever run up to there: over an unfinished line it is tried from each of
    its characters in turn, in time quadratic in the line's length (a block ending in 25,000
    characters of a 40,000-character line took 37 s; a 1 MB line would take hours).
    """
    stop = len(text) if stop is None else stop
    return max(text.rfind("\n", 0, stop), text.rfind("\r", 0, stop)) + 1


def _line_ends(text: str) -> int:
    return text.count("\n") + text.count("\r") - text.count("\r\n")


class _Evidence:
    """What the bytes say about the encoding, gathered chunk by chunk with line numbers."""

    def __init__(self) -> None:
        self.lines_before = 0
        self.first_bad: tuple[int, int] | None = None  # line, byte
        self.first_utf8: int | None = None
        self.first_undefined: tuple[int, int] | None = None
        self.ended_in_cr = False  # a CRLF cut by a block: its LF ends no second line

    def _line(self, text: str, pos: int) -> int:
        cut_crlf = 1 if self.ended_in_cr and text.startswith("\n") and pos > 0 else 0
        return self.lines_before + _line_ends(text[:pos]) - cut_crlf + 1

    def scan(self, chunks: Iterator[str]) -> Iterator[str]:
        for text in chunks:
            if control := _CONTROL.search(text):
                line = self._line(text, control.start())
                raise ImportFileError(
                    f"line {line}: {NOT_TEXT} (control byte 0x{ord(control.group()):02X})"
                )
            if self.first_bad is None and (bad := _NOT_UTF8.search(text)):
                self.first_bad = (self._line(text, bad.start()), ord(bad.group()) - 0xDC00)
            if self.first_utf8 is None and (good := _UTF8_SEQUENCE.search(text)):
                self.first_utf8 = self._line(text, good.start())
            if self.first_undefined is None and (odd := _UNDEFINED_1252.search(text)):
                self.first_undefined = (self._line(text, odd.start()), ord(odd.group()) - 0xDC00)
            self.lines_before += _line_ends(text)
            if self.ended_in_cr and text.startswith("\n"):
                self.lines_before -= 1
            if text:
                self.ended_in_cr = text.endswith("\r")
            yield text

    def encoding(self) -> str:
        if self.first_bad is None:
            return UTF8_BOM  # also reads files without a BOM; strips one where there is
        line, byte = self.first_bad
        if self.first_utf8 is not None:
            raise ImportFileError(
                f"line {line}: not valid UTF-8 (byte 0x{byte:02X}), though line "
                f"{self.first_utf8} is UTF-8: the file mixes two encodings; save it again as "
                "UTF-8 (CSV UTF-8) and import it again"
            )
        if self.first_undefined is not None:
            line, byte = self.first_undefined
            raise ImportFileError(f"line {line}: {NOT_TEXT} (byte 0x{byte:02X})")
        return CP1252
