"""The bad-file corpus: every file a person might upload by mistake, or an attacker on purpose.

Each bad file is refused with a message that says what is wrong and where, and the register is left
as it was. The committed files are in tests/data/bad/ (made by make_corpus.py there, which these tests
never run); the huge ones are made here, in a temporary folder, so the repository stays small. A few
files are hard but valid, and must import.
"""

import importlib.util
import io
import random
import string
import tracemalloc
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.utils import translation

from processors.models import DataItem, Operation, Processor, Service
from processors.spreadsheets.importer import import_register
from tests.builders import make_controller

BAD = Path(__file__).resolve().parent / "data" / "bad"

pytestmark = pytest.mark.django_db


def _load_corpus_builders():
    # The corpus script's package builders, so huge files are built the same way as committed ones.
    spec = importlib.util.spec_from_file_location("make_corpus", BAD / "make_corpus.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


corpus = _load_corpus_builders()


@pytest.fixture(autouse=True)
def english():
    # The assertions read the English messages; the default language is Chinese.
    with translation.override("en"):
        yield


@pytest.fixture
def controller():
    return make_controller()


def row_counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in (Operation, Processor, Service, DataItem)}


@dataclass(frozen=True)
class Refusal:
    """A file, the phrase its first error must contain, and where that error must point."""

    file: str
    phrase: str
    sheet: str = ""
    row: int | None = None
    column: str = ""


BAD_FILES = [
    # Not a spreadsheet, or not one this register reads.
    Refusal("legacy.xls", "old Excel 97-2003 workbook (.xls)"),
    Refusal("password-protected.xlsx", "is password-protected"),
    Refusal("screenshot-renamed.xlsx", "is a PNG image, not a spreadsheet"),
    Refusal("photo-renamed.csv", "is a JPEG image, not a spreadsheet"),
    Refusal("register.pdf", "is a PDF document, not a spreadsheet"),
    Refusal("random-bytes.xlsx", "is not an .xlsx workbook"),
    Refusal("random-bytes.csv", "is not text in UTF-8 or GBK: the byte at offset 2 (line 1)"),
    Refusal("archive-not-workbook.xlsx", "is a zip archive, not an Excel workbook"),
    Refusal("word-renamed.xlsx", "is a Word document, not a spreadsheet"),
    Refusal("workbook-renamed.csv", "is an Excel workbook (.xlsx) with the wrong extension"),
    Refusal("empty.xlsx", "is empty"),
    # Hostile workbooks, refused before they are opened.
    Refusal("unpacked-too-large.xlsx", "unpacks to 300 MB, more than the 100 MB"),
    Refusal("billion-laughs-strings.xlsx", "XML document type declaration (in “xl/sharedStrings.xml”)"),
    Refusal("billion-laughs-sheet.xlsx", "XML document type declaration (in “xl/worksheets/sheet1.xml”)"),
    # Workbooks and text files with a located problem.
    Refusal(
        "formula-without-value.xlsx",
        "formula without a computed value — open and save the file in Excel, or paste values",
        sheet="清单",
        row=3,
        column="C",
    ),
    Refusal(
        "too-many-columns.csv", "This row has cells in 155 columns; at most 100 are read", row=3, column="EY"
    ),
    Refusal("nul-bytes.csv", "contains a NUL character", row=3, column="A"),
    Refusal("unterminated-quote.csv", "A quoted cell that starts on line 3 is never closed", row=3),
    Refusal("stray-quote.csv", 'A closing quote (") is followed by more text', row=3),
    Refusal("broken-utf8.csv", "is not text in UTF-8 or GBK: the byte at offset 222 (line 3)"),
    Refusal("mixed-encodings.tsv", "mixes two text encodings: most of it is UTF-8, but line 3 is GBK"),
    Refusal(
        "bom-then-gbk.csv", "starts with a UTF-8 byte-order mark, but line 1 is not UTF-8 (it looks like GBK)"
    ),
    # Tables the import core refuses.
    Refusal("header-only.xlsx", "no rows to import below its header"),
    Refusal("unknown-headers.csv", "Unknown column header “合作伙伴”", row=1, column="B"),
]


def run_import(path: Path, controller):
    return import_register(path, controller=controller, file_name=path.name)


@pytest.mark.parametrize("case", BAD_FILES, ids=lambda case: case.file)
def test_a_bad_file_is_refused_with_a_clear_located_message_and_nothing_is_written(case, controller):
    before = row_counts()

    report = run_import(BAD / case.file, controller)

    assert not report.ok and not report.committed
    first = report.errors[0]
    assert case.phrase in first.message, first.message
    assert (first.sheet, first.row, first.column) == (case.sheet, case.row, case.column)
    assert row_counts() == before


def test_a_row_repeated_exactly_is_imported_once_with_a_located_warning(controller):
    # Real published tables repeat a row by copy and paste; the repeat means nothing new, so it is not
    # worth refusing the file, but the user is told where it was.
    report = run_import(BAD / "duplicate-rows.tsv", controller)

    assert report.ok and report.committed
    warning = next(problem for problem in report.warnings if problem.code == "row_duplicate")
    assert warning.row == 4
    assert Operation.objects.count() == 2


def test_the_offset_reported_for_broken_utf8_is_where_the_bad_byte_is():
    # The offset in BAD_FILES is where make_corpus.py put the damage, not a number copied from output.
    assert (BAD / "broken-utf8.csv").read_bytes().index(b"\xff") == 222


# --- huge files, made here ------------------------------------------------------------------------


def _workbook_with_sheet(path: Path, sheet_chunks: Iterator[bytes]) -> None:
    """An .xlsx whose worksheet part is streamed in, so a huge sheet never sits in memory."""
    template = zipfile.ZipFile(io.BytesIO(corpus.package(corpus.sheet_xml([["x"]]))))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for info in template.infolist():
            if info.filename == "xl/worksheets/sheet1.xml":
                with archive.open(info.filename, "w") as part:
                    for chunk in sheet_chunks:
                        part.write(chunk)
            else:
                archive.writestr(info.filename, template.read(info))


def _sheet_start() -> bytes:
    return f'<worksheet xmlns="{corpus.MAIN_NS}"><sheetData>'.encode()


def million_rows_xlsx(directory: Path) -> Path:
    def chunks() -> Iterator[bytes]:
        yield _sheet_start()
        for start in range(1, 1_000_001, 10_000):
            # One number a row keeps the sheet under the unpacked-size limit, so the row limit is what trips.
            yield "".join(
                f'<row r="{n}"><c r="A{n}"><v>{n}</v></c></row>' for n in range(start, start + 10_000)
            ).encode()
        yield b"</sheetData></worksheet>"

    path = directory / "million-rows.xlsx"
    _workbook_with_sheet(path, chunks())
    return path


def million_rows_csv(directory: Path) -> Path:
    path = directory / "million-rows.csv"
    path.write_bytes(",".join(corpus.HEADER).encode() + b"\n" + b"s,c,p\n" * 1_000_000)
    return path


def zip_bomb_xlsx(directory: Path) -> Path:
    def chunks() -> Iterator[bytes]:
        yield _sheet_start() + b'<row r="1"><c r="A1" t="inlineStr"><is><t>'
        for _ in range(64):
            yield b"lol" * (1024 * 1024 // 3)
        yield b"</t></is></c></row></sheetData></worksheet>"

    path = directory / "zip-bomb.xlsx"
    _workbook_with_sheet(path, chunks())
    return path


def _megabyte_of_text() -> str:
    # Random letters: they do not compress, so the zip-bomb check does not fire before the cell check.
    return "".join(random.Random(7).choices(string.ascii_letters, k=1024 * 1024))


def megabyte_cell_xlsx(directory: Path) -> Path:
    path = directory / "megabyte-cell.xlsx"
    path.write_bytes(
        corpus.package(corpus.sheet_xml([corpus.HEADER, ["短信服务", _megabyte_of_text(), "手机号"]]))
    )
    return path


def megabyte_cell_csv(directory: Path) -> Path:
    path = directory / "megabyte-cell.csv"
    path.write_text(",".join(corpus.HEADER) + f"\n短信服务,{_megabyte_of_text()},手机号\n", encoding="utf-8")
    return path


@dataclass(frozen=True)
class HugeRefusal:
    make: Callable[[Path], Path]
    phrase: str
    sheet: str = ""
    row: int | None = None
    column: str = ""


HUGE_FILES = [
    HugeRefusal(million_rows_xlsx, "This sheet goes on past row 20,001", sheet="清单", row=20_002),
    HugeRefusal(million_rows_csv, "This file goes on past row 20,001", row=20_002),
    HugeRefusal(zip_bomb_xlsx, "looks like a zip bomb: its part “xl/worksheets/sheet1.xml” unpacks to"),
    HugeRefusal(
        megabyte_cell_xlsx,
        "This cell has 1,048,576 characters; at most 32,767",
        sheet="清单",
        row=2,
        column="B",
    ),
    HugeRefusal(megabyte_cell_csv, "A cell in this row is longer than 32,767 characters", row=2),
]


@pytest.mark.parametrize("case", HUGE_FILES, ids=lambda case: case.make.__name__)
def test_a_huge_file_is_refused_early_and_cheaply(case, controller, tmp_path, settings):
    # The limit these files were made to pass (the default is ten times higher since imports are jobs);
    # what is tested is that reading stops at the limit, whatever it is set to.
    settings.REGISTER_IMPORT_MAX_ROWS = 20_000
    path = case.make(tmp_path)
    before = row_counts()

    tracemalloc.start()
    try:
        report = run_import(path, controller)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert not report.ok
    first = report.errors[0]
    assert case.phrase in first.message, first.message
    assert (first.sheet, first.row, first.column) == (case.sheet, case.row, case.column)
    assert peak < 50 * 1024 * 1024, f"peak {peak / 1024 / 1024:.1f} MB"
    assert row_counts() == before


# --- hard but valid files -------------------------------------------------------------------------


HARD_FILES = [
    "merged-service.xlsx",
    "dimension-too-small.xlsx",
    "title-rows.tsv",
    "dates-where-text-belongs.xlsx",
    "row-longer-than-header.csv",
    "unicode-text.txt",
    "gbk-chinese.csv",
]


@pytest.mark.parametrize("name", HARD_FILES)
def test_a_hard_but_valid_file_imports(name, controller):
    report = run_import(BAD / name, controller)

    assert report.ok and report.committed, report.as_text()


def test_a_service_merged_down_three_rows_names_all_three_operations(controller):
    run_import(BAD / "merged-service.xlsx", controller)

    operations = Operation.objects.filter(service__controller=controller).select_related("service")
    assert sorted(operation.service.name for operation in operations) == ["短信服务"] * 3


def test_a_workbook_whose_stored_dimension_is_too_small_loses_no_row(controller):
    report = run_import(BAD / "dimension-too-small.xlsx", controller)

    assert report.counts["operations"].created == 3


def test_title_lines_above_the_header_are_skipped_and_rows_keep_their_numbers(controller):
    report = run_import(BAD / "title-rows.tsv", controller)

    assert report.counts["operations"].created == 3
    assert {warning.row for warning in report.warnings} <= {4, 5, 6, 7}


def test_a_date_and_a_float_in_text_columns_are_read_as_the_text_excel_shows(controller):
    run_import(BAD / "dates-where-text-belongs.xlsx", controller)

    operation = Operation.objects.get(service__controller=controller)
    assert (operation.purpose_text, operation.actions_text) == ("2024-03-01", "0.3")


def test_a_cell_beyond_the_header_is_kept_in_the_source_row_and_reported(controller):
    report = run_import(BAD / "row-longer-than-header.csv", controller)

    [warning] = [problem for problem in report.warnings if problem.code == "cell_outside_table"]
    assert (warning.row, warning.column, warning.value) == (2, "F", "多出来的一格")
    assert Operation.objects.get(service__controller=controller).source_text.endswith("\t多出来的一格")
