"""Reading an import file: encoding decided on evidence, lines and records streamed, limits."""

from __future__ import annotations

import codecs
import time

import pytest

from prefsvc.errors import ImportFileError, ImportTooLarge
from prefsvc.people.importing import reading

ROWS = "email;first_name\nana@example.org;Amélie\nbo@example.org;Zoë\n"


def test_utf8_with_and_without_bom_is_read_as_utf8(tmp_path):
    for data in (ROWS.encode(), codecs.BOM_UTF8 + ROWS.encode()):
        facts, header = reading.inspect(data)
        assert (facts.encoding, facts.rows, header) == ("utf-8-sig", 2, ["email", "first_name"])
        cells = [c for _, c in reading.records(data, facts.encoding)]
        assert cells[1] == ["ana@example.org", "Amélie"]


def test_a_windows_1252_file_is_read_as_windows_1252(tmp_path):
    path = tmp_path / "export.csv"
    path.write_bytes(
        "Prénom;email\r\nHélène;h@example.org\r\nJosé;j@example.org\r\n".encode("cp1252")
    )
    facts, header = reading.inspect(path)
    assert (facts.encoding, facts.rows) == ("cp1252", 2)
    assert header == ["Prénom", "email"]
    assert [c for _, c in reading.records(path, facts.encoding)][2] == ["José", "j@example.org"]


def test_a_file_mixing_utf8_and_windows_1252_is_refused_naming_the_first_bad_line():
    lines = [f"p{n}@example.org;Amélie".encode() for n in range(10)]
    lines.insert(10, "zoe@example.org;Zoé".encode("cp1252"))  # line 12 with the header
    data = b"email;first_name\n" + b"\n".join(lines) + b"\n"
    with pytest.raises(
        ImportFileError, match=r"^line 12: not valid UTF-8 \(byte 0xE9\)"
    ) as refused:
        reading.inspect(data)
    assert "line 2 is UTF-8" in str(refused.value)


def test_a_bom_is_evidence_of_utf8_too():
    data = codecs.BOM_UTF8 + b"email;first_name\nzoe@example.org;Zo\xe9\n"
    with pytest.raises(ImportFileError, match="line 2: not valid UTF-8"):
        reading.inspect(data)


def test_the_bad_byte_is_found_across_read_blocks(monkeypatch):
    monkeypatch.setattr(reading, "READ_BYTES", 7)  # every sequence and CRLF cut somewhere
    data = ("email;first_name\r\n" + "a@example.org;Amélie\r\n" * 5).encode() + b"z@x.org;\xe9\r\n"
    with pytest.raises(ImportFileError, match="^line 7: not valid UTF-8"):
        reading.inspect(data)
    facts, _ = reading.inspect(data[: -len(b"z@x.org;\xe9\r\n")])
    assert facts.rows == 5


@pytest.mark.parametrize(
    "data, line",
    [
        (b"email\nana@example.org\n\x00\n", 3),
        (b"email\nana\x81@example.org\n", 2),  # undefined in Windows-1252, not UTF-8
        ("email\r\nbo@example.org\r\n".encode("utf-16"), 1),
    ],
)
def test_binary_data_is_refused_naming_the_line(data, line):
    with pytest.raises(ImportFileError, match=f"^line {line}: not a UTF-8 or Windows-1252"):
        reading.inspect(data)


def test_old_mac_line_ends_and_quoted_line_breaks_keep_physical_line_numbers():
    data = b'email,note\r"a@example.org","two\rlines"\rb@example.org,x\r'
    assert [line for line, _ in reading.records(data, "utf-8-sig")] == [1, 2, 4]


def test_an_unclosed_quote_is_refused_before_anything_is_read_further():
    data = b'email,note\na@example.org,"never closed\n' + b"b@example.org,x\n" * 20_000
    with pytest.raises(ImportFileError, match="not valid CSV"):
        reading.inspect(data)


def test_a_line_without_end_is_refused_instead_of_filling_memory(monkeypatch):
    monkeypatch.setattr(reading, "MAX_LINE_CHARS", 1000)
    monkeypatch.setattr(reading, "READ_BYTES", 256)
    with pytest.raises(ImportFileError, match="line 2: longer than"):
        reading.inspect(b"email\n" + b"a" * 5000)


@pytest.mark.parametrize("block", [1, 2, 3, 7, 64])
def test_lines_cut_by_blocks_anywhere_read_as_one_block_would(monkeypatch, block):
    data = (
        b'email,note\r\na@example.org,"two\r\nlines"\rb@example.org,x\n\n'
        b"c@example.org,\r\r\nd@example.org,y\r"
    )
    whole = list(reading.records(data, "utf-8-sig"))
    monkeypatch.setattr(reading, "READ_BYTES", block)
    assert list(reading.records(data, "utf-8-sig")) == whole
    assert [line for line, _ in whole] == [1, 2, 4, 6, 8]


def test_long_lines_are_read_in_linear_time():
    """A block's unfinished line was searched from each of its characters: these 20 lines of
    40,000 characters (a wide notes column) took 7 minutes to read, a 1 MB line would take
    hours."""
    notes = "x" * 40_000
    data = ("email;notes\n" + f"a@example.org;{notes}\r\n" * 20).encode()
    started = time.perf_counter()
    facts, _ = reading.inspect(data)
    records = list(reading.records(data, facts.encoding))
    one_cell = reading.header_preview(b"a" * 200_000)  # no line end in its 64 KiB
    assert time.perf_counter() - started < 5
    assert facts.rows == 20 and records[20] == (21, ["a@example.org", notes])
    assert one_cell == ["a" * 64 * 1024]


def test_a_file_over_the_limit_is_refused_before_it_is_read():
    with pytest.raises(ImportTooLarge, match="file is 22 bytes, more than the import limit of 10 "):
        reading.inspect(b"email\nana@example.org\n", max_bytes=10)


@pytest.mark.parametrize(
    ("size", "said"),
    [(286, "286 bytes"), (99_999, "99,999 bytes"), (4_230_000, "4.2 MB"), (256_000_000, "256 MB")],
)
def test_sizes_in_messages_read_as_people_say_them(size, said):
    assert reading.megabytes(size) == said


def test_header_preview_reads_only_the_start():
    data = "E-mailadres;Prénom\n".encode("cp1252") + b"x@example.org;y\n" * 100_000
    assert reading.header_preview(data) == ["E-mailadres", "Prénom"]
