"""Tables found inside documents (tables.py, table_html.py, table_docx.py), on the real tables corpus.

Every file here is a published table (tests/data/real/, README.md there) or a form derived from one
(the iTrus table as .docx and HTML, made by tests/data/real/make_docx.py); the hostile files are built
from them.
"""

import html
import importlib.util
import io
import tomllib
import zipfile
from pathlib import Path

import docx
import pytest
from django.utils import translation
from markdown_it import MarkdownIt

from processors.spreadsheets.limits import SpreadsheetError
from processors.spreadsheets.tables import (
    document_rows,
    find_tables,
    likeliest,
    text_is_document,
)

ROOT = Path(__file__).resolve().parent.parent
REAL = ROOT / "tests" / "data" / "real"
ITRUS_TSV = ROOT / "fixtures" / "itrus-sdk-table.tsv"
# The whole iTrus privacy policy, as text extracted from its PDF: the corpus's copy of
# ../shared/seeds/001_7150280dd01a4d1f.txt, so a clone anywhere has it.
ITRUS_POLICY = ROOT / "tests" / "data" / "real" / "itrus-policy.txt"
ITRUS_INTRODUCTION = "4、服务过程中涉及的第三方代码、插件、SDK 传输个人信息的情形逐项列举如下："
LABELS = tomllib.loads((REAL / "labels.toml").read_text(encoding="utf-8"))["table"]
# Published as "键：值" records, not as a grid: nothing in them is a table.
RECORD_FORM = {
    "02-xuexiqiangguo-sdk.md",
    "03-qq-sharing.md",
    "04-coolapk-privacy.md",
    "05-simpfun-sdk.md",
    "06-usongame-sdk.md",
    "07-sanuya-sdk.md",
}


def _load_make_docx():
    spec = importlib.util.spec_from_file_location("make_docx", REAL / "make_docx.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_docx = _load_make_docx()


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


def tables_of(name: str) -> list:
    return find_tables((REAL / name).read_bytes(), file_name=name)


def itrus_cells() -> list[list[str]]:
    return [line.split("\t") for line in ITRUS_TSV.read_text(encoding="utf-8").splitlines()]


def refusal(data: bytes, name: str) -> SpreadsheetError:
    with pytest.raises(SpreadsheetError) as caught:
        find_tables(data, file_name=name)
    return caught.value


# --- The corpus -----------------------------------------------------------------------------------


@pytest.mark.parametrize("label", [label for label in LABELS if label["file"] not in RECORD_FORM], ids=str)
def test_every_grid_table_of_the_corpus_is_found_with_its_labelled_rows(label):
    tables = tables_of(label["file"])

    assert tables
    assert sum(len(table.rows) - 1 for table in tables) == label["rows"]


@pytest.mark.parametrize("name", sorted(RECORD_FORM))
def test_a_list_of_records_is_not_a_table_and_the_refusal_says_so(name):
    assert tables_of(name) == []
    with pytest.raises(SpreadsheetError) as caught:
        document_rows((REAL / name).read_bytes(), file_name=name)
    assert caught.value.code == "no_table"
    assert name in caught.value.message


def test_every_table_of_a_document_is_offered_in_order_with_its_heading_as_title():
    tables = tables_of("10-retool-subprocessors.md")

    assert [(table.index, table.title) for table in tables] == [
        (0, "Infrastructure Subprocessors"),
        (1, "Product-Specific Subprocessors"),
        (2, "Other Subprocessors"),
    ]
    assert [table.width for table in tables] == [4, 4, 3]


def test_the_likeliest_table_is_the_subprocessor_table_with_the_most_register_headers():
    table = likeliest(tables_of("10-retool-subprocessors.md"))

    assert table.index == 0
    assert table.header == [
        "Entity Name",
        "Relevant Retool Services",
        "Purpose of Processing",
        "Location of Subprocessors",
    ]
    assert likeliest([]) is None


def test_the_main_sdk_list_is_the_likeliest_not_a_later_list_with_one_more_row():
    # 佳麦 (01): 主要SDK列表 (5 rows) comes first, 厂商通道SDK (6 rows) and 其他SDK (4 rows) after it. All
    # three headers are register headers; past five rows a longer list is no likelier, so the first wins.
    tables = tables_of("01-jiamai-sdk.md")
    assert [(table.title, len(table.rows) - 1) for table in tables] == [
        ("主要SDK列表", 5),
        ("厂商通道SDK", 6),
        ("其他SDK", 4),
    ]

    table = likeliest(tables)

    assert (table.index, table.title) == (0, "主要SDK列表")
    assert tables[0].score == tables[1].score > tables[2].score


def test_a_table_with_too_few_rows_to_be_a_list_is_still_less_likely():
    # Range (17): two rows of infrastructure sub-processors, then ten others; the rows still count
    # up to five, so the list of ten is the likeliest.
    tables = tables_of("17-range-subprocessors.md")

    assert [len(table.rows) - 1 for table in tables] == [2, 10]
    assert likeliest(tables).index == 1


def test_a_header_row_below_an_empty_markdown_header_is_the_header():
    (table,) = tables_of("16-sage-subprocessors.md")

    assert table.title == "Subprocessors"
    assert table.header == ["Sub-Processor", "Location", "Description/Purpose", "Link"]
    assert table.rows[1][:2] == ["Amazon Web Services (AWS)", "USA, Germany, Ireland"]


def test_an_html_table_inside_markdown_is_found_under_its_heading():
    tables = tables_of("01-jiamai-sdk.md")

    assert [table.title for table in tables] == ["主要SDK列表", "厂商通道SDK", "其他SDK"]
    assert tables[2].header == ["SDK名称", "功能", "个人信息类型", "所属机构", "隐私政策链接"]
    assert tables[2].rows[1] == ["谷歌", "辅助开发", "无", "Google Inc", "policies.google.com"]


def test_br_inside_a_cell_is_a_line_break_and_source_line_breaks_are_spaces():
    (table,) = tables_of("08-dcloud-map-sdk.html")
    permissions = table.rows[1][3].split("\n")

    assert table.title == "Map & Geolocation模块集成的三方SDK说明"
    assert permissions[0] == "android.permission.ACCESS_COARSE_LOCATION"
    assert "android.permission.READ_PHONE_STATE" in permissions
    assert len(permissions) == 8
    xiaomi = tables_of("01-jiamai-sdk.md")[0].rows[4][3]
    assert xiaomi.split("\n")[1].startswith("支付：应用ID")


def test_paragraphs_and_list_items_in_a_cell_are_lines_and_links_keep_their_address():
    (table,) = tables_of("14-decisionrules-subprocessors.md")
    (stakater, _) = tables_of("13-stakater-subprocessors.md")

    assert table.rows[1][4] == "https://aws.amazon.com\n440 Terry Ave N\nSeattle, WA 98109"
    assert table.rows[3][4] == "DecisionRules a.s.\nAnglická 141/20\nPraha 120 00\nCzech republic"
    assert stakater.rows[2][1] == "Route 53 for DNS Management\nS3 for Backups"


def test_whitespace_is_collapsed_and_stripped_but_the_text_is_kept():
    (table,) = tables_of("14-decisionrules-subprocessors.md")
    sage = tables_of("16-sage-subprocessors.md")[0]

    assert table.header[3] == "Purpose/Services"  # a tab after it in the source
    assert table.rows[2][1] == "Ireland"  # " Ireland"
    assert sage.rows[1][3] == "https://aws.amazon.com/"  # [<u>url</u>](url)
    assert tables_of("17-range-subprocessors.md")[1].rows[4][0] == "Intercom R&D Unlimited Company"


def test_a_link_shows_its_text_and_its_address_where_they_differ_and_bold_markers_go():
    # Cells of 02 and 05, which publish them as records, put into a pipe table.
    markdown = (
        "| SDK | 运营方 | 链接 |\n"
        "| --- | --- | --- |\n"
        "| **OPPO推送SDK** | OPPO 广东移动通信有限公司 | "
        "[https://open.oppomobile.com/](https://open.oppomobile.com/) |\n"
        "| App 支付宝客户端 SDK | 支付宝支付科技有限公司 | "
        "[App 支付宝客户端 SDK 隐私说明](https://opendocs.alipay.com/common/02kiq3) |\n"
    )
    (table,) = find_tables(markdown.encode(), file_name="sdk.md")

    assert table.rows[1] == ["OPPO推送SDK", "OPPO 广东移动通信有限公司", "https://open.oppomobile.com/"]
    assert table.rows[2][2] == "App 支付宝客户端 SDK 隐私说明 <https://opendocs.alipay.com/common/02kiq3>"


def test_an_interleaved_bilingual_header_over_half_as_many_cells_becomes_one_cell_per_column():
    (english,) = tables_of("09-dcloud-map-sdk-en.html")
    (chinese,) = tables_of("08-dcloud-map-sdk.html")

    assert english.header[0] == "SDK名称\nSDK name"
    assert [cell.split("\n")[0] for cell in english.header] == chinese.header
    assert english.rows[1:] == chinese.rows[1:]


def test_spanned_cells_are_repeated_into_every_position_they_span():
    # 01's second table as its page shows it: 合作目的 written once beside six rows, a title across.
    header, first, *others = tables_of("01-jiamai-sdk.md")[1].rows

    def cells(tag: str, row: list[str]) -> str:
        return "".join(f"<{tag}>{html.escape(cell).replace(chr(10), '<br>')}</{tag}>" for cell in row)

    page = (
        f'<table><tr><th colspan="{len(header)}">厂商通道SDK</th></tr><tr>{cells("th", header)}</tr>'
        f'<tr><td rowspan="{1 + len(others)}">{first[0]}</td>{cells("td", first[1:])}</tr>'
        + "".join(f"<tr>{cells('td', row[1:])}</tr>" for row in others)
        + "</table>"
    )

    (table,) = find_tables(page.encode(), file_name="sdk.html")

    assert table.title == "厂商通道SDK"
    assert table.header == header
    assert [row[0] for row in table.rows[1:]] == [first[0]] * 6
    assert [row[1:] for row in table.rows[1:]] == [row[1:] for row in (first, *others)]


def test_a_page_in_a_legacy_encoding_is_read_in_the_charset_it_declares():
    # 14 as a windows-1252 page (its "Anglická" is not GB18030) and 08 as a GBK page.
    rendered = (
        MarkdownIt("commonmark", {"html": True})
        .enable("table")
        .render((REAL / "14-decisionrules-subprocessors.md").read_text(encoding="utf-8"))
    )
    western = f'<html><head><meta charset="windows-1252"></head><body>{rendered}</body></html>'
    chinese = '<meta http-equiv="Content-Type" content="text/html; charset=gbk">\n' + (
        REAL / "08-dcloud-map-sdk.html"
    ).read_text(encoding="utf-8")

    (table,) = find_tables(western.encode("cp1252", errors="replace"), file_name="sub-processors.htm")
    (map_sdk,) = find_tables(chinese.encode("gbk"), file_name="map.html")

    assert table.rows[3][4].split("\n")[1] == "Anglická 141/20"
    assert map_sdk.rows == tables_of("08-dcloud-map-sdk.html")[0].rows


# --- The iTrus table in its forms -----------------------------------------------------------------


def test_the_itrus_policy_text_yields_exactly_the_cells_of_the_clean_tsv():
    data = ITRUS_POLICY.read_bytes()
    (table,) = find_tables(data, file_name=ITRUS_POLICY.name)

    assert table.title == ITRUS_INTRODUCTION
    assert table.rows == itrus_cells()
    assert text_is_document(data.decode("utf-8"))
    assert not text_is_document(ITRUS_TSV.read_text(encoding="utf-8"))


def test_the_policy_text_repairs_page_breaks_line_wraps_and_split_brackets_only():
    rows = {row[1]: row for row in find_tables(ITRUS_POLICY.read_bytes(), file_name="policy.txt")[0].rows}

    # Continued after a page break: the second half of each cell is on a line with an empty first cell.
    assert rows["腾讯云计算（北京）有限责任公司 010-62671188"][2] == "姓名、身份证号、个人图像"
    assert rows["上海敏懂科技有限公司"][2] == "姓名、身份证号、手机号、银行卡号、港澳台通行证"
    # "北京亿美软通科 技有限公司" and "发送验证 码" were cut by the cell's width.
    assert rows["北京亿美软通科技有限公司 010-58750664"][3] == "发送验证码"
    # A space beside a number or a Latin word is the author's.
    assert "至信链京公网安备 11010702002038号 京 ICP 备 19056263 号-1" in rows
    assert rows["深圳前海微众银行股份有限公司(微众链)"][2] == "数据包 hash"


def test_the_docx_html_and_text_forms_of_the_itrus_table_give_the_same_cells():
    built = make_docx.table_docx(make_docx.itrus_rows())

    for data, name in (
        (built, "built.docx"),
        ((REAL / "itrus-sdk-table.docx").read_bytes(), "itrus-sdk-table.docx"),
        ((REAL / "itrus-sdk-table.html").read_bytes(), "itrus-sdk-table.html"),
    ):
        (table,) = find_tables(data, file_name=name)
        assert table.rows == itrus_cells(), name
        assert table.title == ITRUS_INTRODUCTION, name


def test_the_committed_derived_forms_are_what_make_docx_writes():
    rows = make_docx.itrus_rows()

    assert (REAL / "itrus-sdk-table.docx").read_bytes() == make_docx.table_docx(rows)
    assert (REAL / "itrus-sdk-table.html").read_text(encoding="utf-8") == make_docx.table_html(rows)


def test_word_merged_cells_are_repeated_down_and_across():
    # 01's second table, as a Word table with 合作目的 merged down its six rows.
    rows = tables_of("01-jiamai-sdk.md")[1].rows
    document = docx.Document()
    table = document.add_table(rows=len(rows), cols=len(rows[0]))
    for row, cells in zip(table.rows, rows, strict=True):
        for cell, text in zip(row.cells, cells, strict=True):
            cell.text = text
    table.cell(1, 0).merge(table.cell(len(rows) - 1, 0))
    table.cell(1, 0).text = rows[1][0]
    stream = io.BytesIO()
    document.save(stream)

    (found,) = find_tables(stream.getvalue(), file_name="sdk.docx")

    assert [row[0] for row in found.rows[1:]] == [rows[1][0]] * 6
    assert [row[1:] for row in found.rows] == [row[1:] for row in rows]


def test_document_rows_are_the_likeliest_tables_rows_numbered_from_one():
    data = (REAL / "itrus-sdk-table.html").read_bytes()
    rows = list(document_rows(data, file_name="itrus-sdk-table.html"))

    assert [row.number for row in rows[:2]] == [1, 2]
    assert [row.cells for row in rows] == itrus_cells()


def test_document_rows_can_take_another_table_and_refuse_one_that_is_not_there():
    data = (REAL / "10-retool-subprocessors.md").read_bytes()

    rows = list(document_rows(data, file_name="retool.md", index=2))
    assert rows[1].cells[0] == "Intercom, Inc.."
    with pytest.raises(SpreadsheetError) as caught:
        list(document_rows(data, file_name="retool.md", index=7))
    assert caught.value.code == "no_such_table"


# --- Hostile files --------------------------------------------------------------------------------


def test_a_docx_zip_bomb_is_refused_before_it_is_opened():
    stream = io.BytesIO()
    with (
        zipfile.ZipFile(stream, "w", zipfile.ZIP_DEFLATED) as bomb,
        zipfile.ZipFile(REAL / "itrus-sdk-table.docx") as real,
    ):
        for info in real.infolist():
            bomb.writestr(info, real.read(info))
        bomb.writestr("word/media/image1.png", b"\0" * (20 * 1024 * 1024))

    error = refusal(stream.getvalue(), "itrus.docx")

    assert error.code == "zip_bomb"
    assert "word/media/image1.png" in error.message


def test_a_docx_with_an_entity_declaration_is_refused():
    stream = io.BytesIO()
    declaration = b'?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
    with (
        zipfile.ZipFile(stream, "w", zipfile.ZIP_DEFLATED) as hostile,
        zipfile.ZipFile(REAL / "itrus-sdk-table.docx") as real,
    ):
        for info in real.infolist():
            part = real.read(info)
            if info.filename == "word/document.xml":
                part = part.replace(b"?>", declaration, 1)
            hostile.writestr(info, part)

    error = refusal(stream.getvalue(), "itrus.docx")

    assert error.code == "xml_entities"
    assert "word/document.xml" in error.message


def test_a_damaged_docx_and_a_workbook_named_docx_are_refused():
    data = (REAL / "itrus-sdk-table.docx").read_bytes()
    stream = io.BytesIO()
    with zipfile.ZipFile(stream, "w") as workbook:
        workbook.writestr("xl/workbook.xml", "<workbook/>")

    assert refusal(data[: len(data) // 2], "cut.docx").code == "damaged"
    assert refusal(stream.getvalue(), "book.docx").code == "not_a_document"


def test_an_html_page_with_an_entity_expansion_is_refused():
    page = (REAL / "08-dcloud-map-sdk.html").read_text(encoding="utf-8")
    bomb = '<!DOCTYPE html [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>\n' + page

    error = refusal(bomb.replace("高德开放平台", "&b;").encode(), "map.html")

    assert error.code == "html_entities"
    assert "map.html" in error.message


def test_a_markdown_file_with_ten_thousand_tables_is_refused_before_parsing():
    table = (REAL / "15-zephyr-subprocessors.md").read_text(encoding="utf-8").split("\n\n")[2]

    error = refusal(("\n\n".join([table] * 10_000)).encode(), "many.md")

    assert error.code == "too_many_tables"
    assert "200" in error.message


def test_a_markdown_file_too_large_to_parse_quickly_is_refused():
    policy = (REAL / "04-coolapk-privacy.md").read_text(encoding="utf-8")

    assert refusal((policy * 20).encode(), "policy.md").code == "markdown_too_large"


def test_a_page_nested_past_the_parsers_depth_is_refused_not_read_in_part():
    page = (REAL / "08-dcloud-map-sdk.html").read_text(encoding="utf-8")

    assert refusal(("<div>" * 1000 + page).encode(), "deep.html").code == "too_deep"


def test_tables_are_held_to_the_import_limits(settings):
    page = (REAL / "itrus-sdk-table.html").read_bytes()

    settings.REGISTER_IMPORT_MAX_ROWS = 10
    error = refusal(page, "itrus.html")
    assert (error.code, error.row) == ("too_many_rows", 12)
    settings.REGISTER_IMPORT_MAX_ROWS = 20_000
    settings.REGISTER_IMPORT_MAX_COLUMNS = 4
    assert refusal(page, "itrus.html").code == "too_many_columns"
    settings.REGISTER_IMPORT_MAX_COLUMNS = 100
    settings.REGISTER_IMPORT_MAX_CELL_CHARS = 40
    error = refusal(page, "itrus.html")
    assert (error.code, error.column) == ("cell_too_long", "C")


def test_a_colspan_past_the_column_limit_is_refused():
    page = (REAL / "08-dcloud-map-sdk.html").read_text(encoding="utf-8")

    error = refusal(page.replace("<th ", '<th colspan="100000" ', 1).encode(), "wide.html")

    assert error.code == "too_many_columns"
