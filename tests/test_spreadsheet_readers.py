"""Unit tests of the readers (readers.py, xlsx.py, limits.py): encodings, pasted text, workbooks, limits."""

import datetime
import importlib.util
import io
import struct
import zipfile
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from django.utils import translation

from processors.spreadsheets import xlsx
from processors.spreadsheets.limits import SpreadsheetError
from processors.spreadsheets.readers import (
    detect_encoding,
    read_bytes,
    read_pasted_text,
    read_rows,
)
from processors.spreadsheets.xlsx import cell_text

BAD = Path(__file__).resolve().parent / "data" / "bad"
HEADER = "服务/功能名称\t服务主体\t处理个人信息范围\n"
ROW = "短信服务\t北京亿美软通科技有限公司\t手机号\n"


def _load_corpus_builders():
    # Minimal .xlsx packages, built the same way as the committed corpus.
    spec = importlib.util.spec_from_file_location("make_corpus", BAD / "make_corpus.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


corpus = _load_corpus_builders()


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


def rows(data: bytes | str, name: str = "table.csv") -> list[tuple[str, int, list[str]]]:
    source = read_pasted_text(data) if isinstance(data, str) else read_bytes(data, file_name=name)
    return [(row.sheet, row.number, row.cells) for row in source]


def refusal(data: bytes | str, name: str = "table.csv") -> SpreadsheetError:
    with pytest.raises(SpreadsheetError) as caught:
        rows(data, name)
    return caught.value


def workbook(build) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "清单"
    build(sheet)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def package(body: str, *, after_data: str = "", shared_strings: str = "") -> bytes:
    """A workbook around a hand-written <sheetData> body, for what Excel writes and libraries don't."""
    sheet = (
        f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{corpus.MAIN_NS}">'
        f"<sheetData>{body}</sheetData>{after_data}</worksheet>"
    )
    return corpus.package(sheet, shared_strings=shared_strings)


# --- text encodings -------------------------------------------------------------------------------


def test_utf8_text_is_read():
    assert rows((HEADER + ROW).encode("utf-8"))[1] == (
        "",
        2,
        ["短信服务", "北京亿美软通科技有限公司", "手机号"],
    )


def test_a_utf8_byte_order_mark_does_not_stick_to_the_first_header():
    assert rows(b"\xef\xbb\xbf" + (HEADER + ROW).encode("utf-8"))[0][2][0] == "服务/功能名称"


def test_gbk_text_from_chinese_excel_is_detected():
    data = (HEADER + "中文服务\t中文公司\t姓名\n").encode("gbk")

    assert detect_encoding(data) == "gb18030"
    assert rows(data)[1][2] == ["中文服务", "中文公司", "姓名"]


def test_utf16_unicode_text_from_excel_is_read():
    data = ("\ufeff" + HEADER + ROW).encode("utf-16-le")

    assert detect_encoding(data) == "utf-16"
    assert rows(data, "table.txt")[1][2][0] == "短信服务"


def test_a_gbk_line_in_a_utf8_file_is_named():
    data = (HEADER + ROW).encode("utf-8") + "实名认证\t商汤科技\t姓名\n".encode("gbk") + ROW.encode("utf-8")

    error = refusal(data)

    assert error.code == "encoding_mixed"
    assert "most of it is UTF-8, but line 3 is GBK" in error.message


def test_a_utf8_line_in_a_gbk_file_is_named():
    gbk_lines = (HEADER + ROW + "实名认证\t商汤科技\t姓名\n").encode("gbk")

    error = refusal(gbk_lines + "电子签名\t天威诚信\t手机号\n".encode())

    assert "most of it is GBK, but line 4 is UTF-8" in error.message


def test_bytes_in_neither_encoding_are_located_by_offset_and_line():
    data = HEADER.encode("utf-8") + b"\xff" + ROW.encode("utf-8")

    error = refusal(data)

    assert error.code == "encoding_invalid"
    assert f"offset {len(HEADER.encode('utf-8'))} (line 2)" in error.message


def test_a_utf8_byte_order_mark_before_gbk_text_is_refused():
    error = refusal(b"\xef\xbb\xbf" + (HEADER + ROW).encode("gbk"))

    assert error.code == "encoding_bom_mismatch"
    assert "line 1 is not UTF-8 (it looks like GBK)" in error.message


def test_a_nul_character_is_located():
    error = refusal((HEADER + "短信\x00服务\t公司\t手机号\n").encode("utf-8"))

    assert (error.code, error.row, error.column) == ("nul", 2, "A")


# --- delimited text -------------------------------------------------------------------------------


def test_pasted_tab_separated_text_keeps_commas_inside_cells():
    pasted = "服务\t服务主体\n证书\tDigicert, Certum, GlobalSign\n"

    assert rows(pasted)[1][2] == ["证书", "Digicert, Certum, GlobalSign"]


def test_pasted_text_without_tabs_is_read_as_comma_separated():
    assert rows("服务,服务主体\n短信,亿美软通\n")[1][2] == ["短信", "亿美软通"]


def test_a_quoted_cell_spanning_lines_is_one_row():
    data = 'service,items\nsms,"手机号\n姓名"\nlogin,邮箱\n'.encode()

    assert [(number, cells) for _sheet, number, cells in rows(data)][1:] == [
        (2, ["sms", "手机号\n姓名"]),
        (3, ["login", "邮箱"]),
    ]


def test_an_unterminated_quote_names_the_line_where_it_opens():
    error = refusal('service,items\nsms,"手机号\nlogin,邮箱\n'.encode())

    assert (error.code, error.row) == ("unterminated_quote", 2)
    assert "starts on line 2" in error.message


def test_title_lines_above_the_header_are_skipped_and_numbers_are_kept():
    pasted = "某某公司第三方共享清单\n\n" + HEADER + ROW

    assert [(number, cells[0]) for _sheet, number, cells in rows(pasted)] == [
        (3, "服务/功能名称"),
        (4, "短信服务"),
    ]


def test_a_title_line_does_not_make_a_tab_separated_file_comma_separated():
    data = ("清单，2024年版\n" + HEADER + ROW).encode("utf-8")

    assert rows(data)[0][2] == ["服务/功能名称", "服务主体", "处理个人信息范围"]


def test_a_one_column_table_is_not_mistaken_for_title_lines():
    assert [cells for _sheet, _number, cells in rows("服务\n短信\n登录\n")] == [["服务"], ["短信"], ["登录"]]


# --- workbooks ------------------------------------------------------------------------------------


def test_a_workbook_is_read_by_calamine_without_opening_openpyxl(monkeypatch):
    monkeypatch.setattr(openpyxl, "load_workbook", lambda *args, **kw: pytest.fail("openpyxl was reached"))

    assert rows(workbook(lambda sheet: sheet.append(["a", "b"])), "t.xlsx") == [("清单", 1, ["a", "b"])]


def test_error_cells_read_as_excel_shows_them(monkeypatch):
    # calamine reads #N/A as empty and refuses #SPILL!; such a sheet is read by openpyxl, read-only.
    calls = []
    load = openpyxl.load_workbook
    monkeypatch.setattr(openpyxl, "load_workbook", lambda *args, **kw: calls.append(kw) or load(*args, **kw))
    data = package(
        '<row r="1"><c r="A1" t="inlineStr"><is><t>服务</t></is></c><c r="B1" t="e"><v>#N/A</v></c>'
        '<c r="C1" t="e"><f>SEQUENCE(2)</f><v>#SPILL!</v></c></row>'
    )

    assert rows(data, "t.xlsx") == [("清单", 1, ["服务", "#N/A", "#SPILL!"])]
    assert calls == [{"read_only": True, "data_only": True}]


def test_leading_empty_rows_and_columns_keep_the_numbers_and_columns_excel_shows():
    data = package(
        '<row r="3"><c r="C3" t="inlineStr"><is><t>服务</t></is></c>'
        '<c r="D3" t="inlineStr"><is><t>主体</t></is></c></row>'
        '<row r="5"><c r="D5" t="inlineStr"><is><t>亿美</t></is></c></row>'
    )

    assert rows(data, "t.xlsx") == [("清单", 3, ["", "", "服务", "主体"]), ("清单", 5, ["", "", "", "亿美"])]


def test_a_sheet_without_cells_has_no_rows_rather_than_crashing_the_reader():
    assert rows(package(""), "t.xlsx") == []


def test_a_single_cell_far_below_the_limit_is_refused_before_the_sheet_is_held_in_memory(settings):
    settings.REGISTER_IMPORT_MAX_ROWS = 20_000
    data = package(
        '<row r="1"><c r="A1"><v>1</v></c><c r="B1"><v>2</v></c></row>'
        '<row r="1048576"><c r="XFD1048576"><v>1</v></c></row>'
    )

    error = refusal(data, "t.xlsx")

    assert (error.code, error.row) == ("too_many_rows", 20_002)


def test_a_line_break_excel_escaped_in_a_cell_is_read_without_the_escape():
    # Excel writes a carriage return as _x000D_; openpyxl left that code in the text, calamine decodes it.
    data = package(
        '<row r="1"><c r="A1" t="inlineStr"><is><t>短信_x000D_\n服务</t></is></c>'
        '<c r="B1" t="inlineStr"><is><t>亿美</t></is></c></row>'
    )

    assert rows(data, "t.xlsx")[0][2] == ["短信\r\n服务", "亿美"]


def test_hidden_sheets_are_not_read():
    def build(sheet):
        sheet.append(["服务", "主体"])
        hidden = sheet.parent.create_sheet("旧版")
        hidden.append(["旧服务", "旧主体"])
        hidden.sheet_state = "hidden"

    assert {sheet for sheet, _number, _cells in rows(workbook(build), "t.xlsx")} == {"清单"}


def test_a_merge_down_fills_every_row_of_the_range_that_has_content():
    def build(sheet):
        for cells in (["服务", "主体"], ["短信", "亿美"], [None, "未来无线"], [None, None], [None, "创蓝"]):
            sheet.append(cells)
        sheet.merge_cells("A2:A5")

    assert [(number, cells) for _sheet, number, cells in rows(workbook(build), "t.xlsx")][1:] == [
        (2, ["短信", "亿美"]),
        (3, ["短信", "未来无线"]),
        (5, ["短信", "创蓝"]),
    ]


def test_a_merge_across_columns_is_not_spread_under_other_headers():
    def build(sheet):
        sheet.append(["服务", "主体", "范围"])
        sheet.append(["短信", "亿美", None])
        sheet.merge_cells("B2:C2")

    cells = rows(workbook(build), "t.xlsx")[1][2]

    assert cells + [""] * (3 - len(cells)) == ["短信", "亿美", ""]


def test_merges_are_read_when_the_sheet_uses_a_namespace_prefix():
    cells = [("A1", "服务"), ("B1", "主体"), ("A2", "短信"), ("B2", "亿美"), ("B3", "创蓝")]
    by_row = {}
    for reference, text in cells:
        by_row.setdefault(reference[1:], []).append(
            f'<x:c r="{reference}" t="inlineStr"><x:is><x:t>{text}</x:t></x:is></x:c>'
        )
    sheet = (
        f'<?xml version="1.0" encoding="UTF-8"?><x:worksheet xmlns:x="{corpus.MAIN_NS}"><x:sheetData>'
        + "".join(f'<x:row r="{number}">{"".join(row)}</x:row>' for number, row in by_row.items())
        + '</x:sheetData><x:mergeCells count="1"><x:mergeCell ref="A2:A3"/></x:mergeCells></x:worksheet>'
    )

    assert rows(corpus.package(sheet), "t.xlsx")[2][2] == ["短信", "创蓝"]


def test_a_formula_is_read_as_the_value_excel_cached():
    data = package(
        '<row r="1"><c r="A1"><f>1+1</f><v>2</v></c><c r="B1" t="inlineStr"><is><t>x</t></is></c></row>'
    )

    assert rows(data, "t.xlsx")[0][2] == ["2", "x"]


def test_a_formula_whose_result_is_empty_text_is_an_empty_cell_not_an_error():
    data = package(
        '<row r="1"><c r="A1" t="inlineStr"><is><t>x</t></is></c>'
        '<c r="B1" t="str"><f>IF(A1="","","")</f><v></v></c>'
        '<c r="C1" t="inlineStr"><is><t>y</t></is></c></row>'
    )

    assert rows(data, "t.xlsx")[0][2] == ["x", "", "y"]


def test_a_formula_without_a_cached_value_is_located():
    data = workbook(lambda sheet: (sheet.append(["服务", "主体"]), sheet.__setitem__("B2", "=A1")))

    error = refusal(data, "t.xlsx")

    assert (error.code, error.sheet, error.row, error.column) == ("formula_without_value", "清单", 2, "B")


def test_a_stored_dimension_smaller_than_the_data_loses_no_row():
    assert len(rows((BAD / "dimension-too-small.xlsx").read_bytes(), "t.xlsx")) == 4


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (datetime.datetime(2024, 3, 1), "2024-03-01"),
        (datetime.datetime(2024, 3, 1, 9, 30), "2024-03-01 09:30:00"),
        (datetime.date(2024, 3, 1), "2024-03-01"),
        (datetime.time(9, 30), "09:30:00"),
        (95534.0, "95534"),
        (0.1 + 0.2, "0.3"),
        (Decimal("1.50"), "1.5"),
        (True, "TRUE"),
        (None, ""),
    ],
)
def test_a_workbook_value_becomes_the_text_excel_shows(value, text):
    assert cell_text(value) == text


def test_a_date_typed_into_a_text_column_is_read_as_an_iso_date():
    data = workbook(
        lambda sheet: (sheet.append(["服务", "目的"]), sheet.append(["短信", datetime.date(2024, 3, 1)]))
    )

    assert rows(data, "t.xlsx")[1][2] == ["短信", "2024-03-01"]


# --- limits ---------------------------------------------------------------------------------------


def test_the_row_limit_stops_a_text_file_at_the_first_row_past_it(settings):
    settings.REGISTER_IMPORT_MAX_ROWS = 3

    error = refusal((HEADER + ROW * 10).encode("utf-8"))

    assert (error.code, error.row) == ("too_many_rows", 5)


def test_the_row_limit_refuses_a_workbook_before_a_reader_opens_it(settings, monkeypatch):
    settings.REGISTER_IMPORT_MAX_ROWS = 3
    data = workbook(lambda sheet: [sheet.append([f"服务{n}", "主体"]) for n in range(10)])
    monkeypatch.setattr(openpyxl, "load_workbook", lambda *args, **kw: pytest.fail("openpyxl was reached"))
    monkeypatch.setattr(xlsx, "CalamineWorkbook", None)  # any use of calamine would fail

    error = refusal(data, "t.xlsx")

    assert (error.code, error.sheet, error.row) == ("too_many_rows", "清单", 5)


def test_the_column_limit_names_the_last_column(settings):
    settings.REGISTER_IMPORT_MAX_COLUMNS = 3

    error = refusal(",".join("abcd").encode() + b"\n")

    assert (error.code, error.row, error.column) == ("too_many_columns", 1, "D")


def test_empty_cells_on_the_right_do_not_count_against_the_column_limit(settings):
    settings.REGISTER_IMPORT_MAX_COLUMNS = 2

    assert rows(b"a,b,,,,\n")[0][2][:2] == ["a", "b"]


def test_the_cell_length_limit_is_located(settings):
    settings.REGISTER_IMPORT_MAX_CELL_CHARS = 5

    error = refusal(workbook(lambda sheet: sheet.append(["服务", "北京亿美软通科技有限公司"])), "t.xlsx")

    assert (error.code, error.row, error.column) == ("cell_too_long", 1, "B")


def test_the_size_limit_is_checked_before_reading(settings, tmp_path):
    settings.REGISTER_IMPORT_MAX_BYTES = 10
    path = tmp_path / "t.csv"
    path.write_bytes((HEADER + ROW).encode("utf-8"))

    with pytest.raises(SpreadsheetError) as caught:
        read_rows(path)

    assert caught.value.code == "too_large"


def test_the_unpacked_size_is_read_from_the_zip_directory(settings):
    settings.REGISTER_IMPORT_MAX_UNPACKED_BYTES = 2000

    error = refusal(workbook(lambda sheet: sheet.append(["服务", "主体"])), "t.xlsx")

    assert error.code == "unpacked_too_large"


def test_a_part_compressed_beyond_the_ratio_is_refused(settings):
    settings.REGISTER_IMPORT_MAX_COMPRESSION_RATIO = 5
    body = "".join(f'<row r="{n}"><c r="A{n}"><v>1</v></c></row>' for n in range(1, 60_000))

    error = refusal(package(body), "t.xlsx")

    assert error.code == "zip_bomb"
    assert "“xl/worksheets/sheet1.xml”" in error.message


def test_a_zip_directory_that_understates_a_size_fails_instead_of_growing():
    honest = workbook(lambda sheet: sheet.append(["服务", "主体"]))
    # Claim 10 bytes for the sheet in both headers: zipfile inflates no more, and the CRC then fails.
    name = b"xl/worksheets/sheet1.xml"
    lying = bytearray(honest)
    for signature, size_offset, name_offset in ((b"PK\x03\x04", 22, 30), (b"PK\x01\x02", 24, 46)):
        position = 0
        while (position := lying.find(signature, position)) >= 0:
            if lying[position + name_offset : position + name_offset + len(name)] == name:
                struct.pack_into("<I", lying, position + size_offset, 10)
            position += 4

    assert refusal(bytes(lying), "t.xlsx").code == "damaged"


def test_a_billion_laughs_workbook_is_refused_before_it_is_parsed():
    error = refusal((BAD / "billion-laughs-strings.xlsx").read_bytes(), "t.xlsx")

    assert error.code == "xml_entities"


def test_openpyxl_parses_with_defusedxml_so_entities_are_refused_even_past_our_scan(monkeypatch):
    assert openpyxl.xml.DEFUSEDXML
    monkeypatch.setattr(xlsx, "_DTD_MARKERS", ())

    error = refusal((BAD / "billion-laughs-strings.xlsx").read_bytes(), "t.xlsx")

    assert error.code == "xml_entities"
    assert "document type declaration" in error.message


def test_more_shared_strings_than_the_limits_can_use_are_refused(settings):
    settings.REGISTER_IMPORT_MAX_ROWS = 1
    settings.REGISTER_IMPORT_MAX_COLUMNS = 1
    strings = "".join(f"<si><t>{n}</t></si>" for n in range(3))
    shared = f'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="{corpus.MAIN_NS}">{strings}</sst>'

    error = refusal(package('<row r="1"><c r="A1" t="s"><v>0</v></c></row>', shared_strings=shared), "t.xlsx")

    assert error.code == "too_many_strings"


def test_too_many_merged_ranges_are_refused(monkeypatch):
    monkeypatch.setattr(xlsx, "MAX_MERGED_RANGES", 2)
    merges = "".join(f'<mergeCell ref="A{n}:A{n + 1}"/>' for n in range(1, 8, 2))

    error = refusal(
        package('<row r="1"><c r="A1"><v>1</v></c></row>', after_data=f"<mergeCells>{merges}</mergeCells>"),
        "t.xlsx",
    )

    assert (error.code, error.sheet) == ("too_many_merges", "清单")


def test_a_zip_with_too_many_members_is_refused_without_listing_them(monkeypatch):
    monkeypatch.setattr(xlsx, "MAX_ZIP_MEMBERS", 3)

    assert refusal(workbook(lambda sheet: sheet.append(["a", "b"])), "t.xlsx").code == "zip_members"


def test_an_opendocument_spreadsheet_is_named():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        archive.writestr("content.xml", "<office:document-content/>")

    error = refusal(buffer.getvalue(), "t.xlsx")

    assert error.code == "ods"
    assert "OpenDocument spreadsheet (.ods)" in error.message


# --- too-wide rows: refused where they are, past openpyxl's last column letter (ZZZ = 18,278) ------

WIDE = 18_300


def wide_header(count: int = WIDE) -> list[str]:
    return [f"h{index}" for index in range(count)]


def wide_docx(count: int = WIDE) -> bytes:
    import docx

    document = docx.Document()
    table = document.add_table(rows=2, cols=2)
    for row, texts in zip(table.rows, (["服务", "主体"], ["短信", "亿美"]), strict=True):
        for cell, text in zip(row.cells, texts, strict=True):
            cell.text = text
    buffer = io.BytesIO()
    document.save(buffer)
    source, out = zipfile.ZipFile(io.BytesIO(buffer.getvalue())), io.BytesIO()
    cells = "".join(f"<w:tc><w:p><w:r><w:t>h{index}</w:t></w:r></w:p></w:tc>" for index in range(count))
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            part = source.read(info.filename)
            if info.filename == "word/document.xml":
                text = part.decode("utf-8")
                start = text.index("<w:tr")
                end = text.index("</w:tr>", start) + len("</w:tr>")
                part = (text[:start] + f"<w:tr>{cells}</w:tr>" + text[end:]).encode("utf-8")
            target.writestr(info, part)
    return out.getvalue()


def wide_files() -> dict[str, bytes | str]:
    header = wide_header()
    cells_without_reference = "".join(f'<c t="inlineStr"><is><t>h{i}</t></is></c>' for i in range(WIDE))
    second = '<row r="2"><c r="A2" t="inlineStr"><is><t>短信</t></is></c></row>'
    return {
        "t.csv": (",".join(header) + "\n短信,亿美\n").encode(),
        "t.tsv": ("\t".join(header) + "\n短信\t亿美\n").encode(),
        "pasted": "\t".join(header) + "\n短信\t亿美\n",
        "t.md": ("|" + "|".join(header) + "|\n|" + "|".join(["-"] * WIDE) + "|\n|短信|亿美|\n").encode(),
        "t.html": (
            "<table><tr>" + "".join(f"<th>{h}</th>" for h in header) + "</tr>"
            "<tr><td>短信</td><td>亿美</td></tr></table>"
        ).encode(),
        "t.docx": wide_docx(),
        "counted.xlsx": package(f'<row r="1">{cells_without_reference}</row>{second}'),
        "referenced.xlsx": package(
            '<row r="1"><c r="A1" t="inlineStr"><is><t>a</t></is></c>'
            f'<c r="AAAA1" t="inlineStr"><is><t>b</t></is></c></row>{second}'
        ),
    }


@pytest.mark.parametrize("name", list(wide_files()))
def test_a_row_wider_than_openpyxl_can_name_is_refused_with_its_row_by_every_reader(name):
    data = wide_files()[name]

    error = refusal(data, name)

    assert error.code == "too_many_columns"
    assert error.row == 1
    assert error.column  # located, even where openpyxl would have no letter for it
    assert "at most 100 are read" in error.message


def test_a_counted_workbook_row_reports_its_real_width_and_last_column():
    error = refusal(wide_files()["counted.xlsx"], "counted.xlsx")

    assert (error.column, f"{WIDE:,}" in error.message) == ("AAAV", True)


def test_column_names_go_on_past_zzz():
    from processors.spreadsheets.limits import column_name

    assert [column_name(n) for n in (1, 26, 27, 702, 703, 18_278, 18_279)] == [
        "A",
        "Z",
        "AA",
        "ZZ",
        "AAA",
        "ZZZ",
        "AAAA",
    ]
