import csv
import datetime
import io
import math
from pathlib import Path

import openpyxl
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from hypothesis import given
from hypothesis import strategies as st
from openpyxl.cell.rich_text import CellRichText, TextBlock

from processors.demo import demo_load
from processors.disclosure.rows import FILE_HEADERS, rows_from_operations
from processors.models import Controller, DataCategory, DataItem, Operation, Processor
from processors.spreadsheets.export import (
    NOTES_SHEET_TITLE,
    WORKBOOK_SHEETS,
    ExportError,
    ExportFilterError,
    export_disclosure,
    export_workbook,
    operations_for_export,
)
from processors.spreadsheets.importer import import_register
from processors.spreadsheets.safety import neutralise, unneutralise
from tests.builders import make_controller, make_operation, make_processor, make_service

pytestmark = pytest.mark.django_db

ITRUS_HEADERS = ["服务/功能名称", "服务主体", "处理个人信息范围", "处理个人信息目的", "处理个人信息方式"]

# Queries of one export, whatever the number of operations (one chunk): see the tests that pin them.
DISCLOSURE_QUERIES = 6  # extra-sensitive categories, operations, data items, purposes, actions, members
WORKBOOK_QUERIES = 14  # 9 reference sheets (+1 prefetch), operations (+2 prefetches), data items


@pytest.fixture
def demo() -> Controller:
    demo_load()
    return Controller.objects.get(code="itrus")


def disclosure(operations=None, **options) -> bytes:
    stream = io.BytesIO()
    export_disclosure(Operation.objects.all() if operations is None else operations, stream=stream, **options)
    return stream.getvalue()


def workbook_bytes(operations=None) -> bytes:
    stream = io.BytesIO()
    export_workbook(Operation.objects.all() if operations is None else operations, stream=stream)
    return stream.getvalue()


def load(data: bytes) -> openpyxl.Workbook:
    return openpyxl.load_workbook(io.BytesIO(data), rich_text=True)


def table_rows(data: bytes) -> list[list]:
    """The first sheet's rows as plain values (rich text flattened)."""
    sheet = load(data).worksheets[0]
    return [
        [str(value) if value is not None else None for value in row]
        for row in sheet.iter_rows(values_only=True)
    ]


def csv_rows(data: bytes, encoding: str = "utf-8-sig") -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode(encoding), newline="")))


def row_for(rows: list[list], service: str, recipient_start: str) -> list:
    return next(row for row in rows if row[0] == service and row[1].startswith(recipient_start))


def register_state(controller: Controller) -> set[tuple]:
    """What a disclosure table says about each operation, comparable across controllers."""
    operations = (
        Operation.objects.filter(service__controller=controller)
        .select_related("service", "processor")
        .prefetch_related("data_items__category", "purposes", "actions")
    )
    return {
        (
            operation.service.name,
            operation.processor.name_key,
            operation.recipient_qualifier,
            operation.cross_border,
            tuple(country.code for country in operation.destination_countries),
            frozenset(
                (item.position, item.text, item.category and item.category.code)
                for item in operation.data_items.all()
            ),
            frozenset(purpose.code for purpose in operation.purposes.all()),
            frozenset(action.code for action in operation.actions.all()),
            operation.actions_open_ended,
        )
        for operation in operations
    }


# --- The Chinese disclosure table -----------------------------------------------------------------


def test_the_chinese_xlsx_has_the_five_itrus_headers_then_the_countries_abroad_in_row_1(demo):
    assert table_rows(disclosure())[0] == [*ITRUS_HEADERS, "境外接收方所在国家或地区"]


def test_the_chinese_xlsx_has_one_row_per_demo_operation(demo):
    assert len(table_rows(disclosure())) - 1 == 43


def test_rows_come_in_the_published_order_of_the_imported_table(demo):
    published = Path(settings.BASE_DIR, "fixtures", "itrus-sdk-table.tsv").read_text(encoding="utf-8")
    published_services = [line.split("\t")[0] for line in published.splitlines()[1:]]
    assert [row[0] for row in table_rows(disclosure())[1:]] == published_services


def test_rows_of_one_service_are_together(demo):
    services_in_file = [row[0] for row in table_rows(disclosure())[1:]]

    groups = [
        name
        for index, name in enumerate(services_in_file)
        if index == 0 or services_in_file[index - 1] != name
    ]
    assert len(groups) == len(set(groups)) == 16


def test_the_service_name_is_repeated_on_every_row_rather_than_merged(demo):
    sheet = load(disclosure()).worksheets[0]

    assert not sheet.merged_cells.ranges
    assert all(row[0] for row in sheet.iter_rows(min_row=2, values_only=True))


def test_the_recipient_cell_carries_the_processor_phone(demo):
    rows = table_rows(disclosure())

    assert row_for(rows, "实名认证服务", "北京市商汤")[1] == "北京市商汤科技开发有限公司 400-900-5986"


def test_a_group_recipient_lists_its_members_in_brackets(demo):
    recipient = row_for(table_rows(disclosure()), "仲裁服务", "仲裁委")[1]

    assert recipient.startswith("仲裁委（") and recipient.endswith("）")
    assert "武汉仲裁委员会" in recipient and "鹰潭仲裁委" in recipient


def test_the_recipient_cell_carries_the_qualifier(demo):
    rows = table_rows(disclosure())

    assert row_for(rows, "案件处理渠道", "法证链")[1] == "法证链科技创新有限公司（及其合作机构）"


def test_the_data_items_are_the_published_items_joined_by_the_chinese_comma(demo):
    rows = table_rows(disclosure())

    assert row_for(rows, "身份认证服务", "北京今始")[2] == "姓名、身份证号、个人图像、银行卡号"


def test_only_sensitive_items_are_bold_in_the_xlsx(demo):
    sheet = load(disclosure()).worksheets[0]
    cell = next(row[2] for row in sheet.iter_rows(min_row=2) if row[1].value.startswith("北京银联商务"))

    assert isinstance(cell.value, CellRichText)
    bold = {part.text for part in cell.value if isinstance(part, TextBlock) and part.font.b}
    assert "身份证号" in bold and "银行卡号" in bold
    assert "手机号" not in bold and "姓名" not in bold


def test_a_category_the_controller_treats_as_sensitive_is_bold_too(demo):
    demo.extra_sensitive_categories.add(DataCategory.objects.get(code="basic.phone_number"))
    sheet = load(disclosure()).worksheets[0]
    cell = next(row[2] for row in sheet.iter_rows(min_row=2) if row[1].value.startswith("北京银联商务"))

    assert "手机号" in {part.text for part in cell.value if isinstance(part, TextBlock) and part.font.b}


def test_the_header_row_is_frozen_and_printed_on_every_page(demo):
    sheet = load(disclosure()).worksheets[0]

    assert sheet.freeze_panes == "A2"
    assert sheet.print_title_rows == "$1:$1"
    assert sheet.cell(1, 1).font.b


def test_the_table_prints_landscape_fitted_to_the_page_width_with_wrapped_cells(demo):
    sheet = load(disclosure()).worksheets[0]

    assert sheet.page_setup.orientation == "landscape"
    assert sheet.sheet_properties.pageSetUpPr.fitToPage
    assert (sheet.page_setup.fitToWidth, sheet.page_setup.fitToHeight) == (1, 0)
    assert [sheet.column_dimensions[letter].width for letter in "ABCDE"] == [16, 36, 50, 18, 44]
    assert all(cell.alignment.wrap_text for row in sheet.iter_rows(min_row=1) for cell in row)


def test_rows_with_long_text_are_made_tall_enough_to_print(demo):
    sheet = load(disclosure()).worksheets[0]
    row = next(row[0].row for row in sheet.iter_rows(min_row=2) if row[1].value.startswith("仲裁委"))

    assert sheet.row_dimensions[row].height >= 45


def test_the_notes_sheet_lists_the_cross_border_recipients_with_their_countries(demo):
    notes = load(disclosure())[NOTES_SHEET_TITLE]
    lines = [row[0] for row in notes.iter_rows(values_only=True) if row and row[0]]

    assert (
        "Digicert, Certum, GlobalSign, Sectigo, Actalis：比利时、英国、意大利、波兰、美国"
        "（服务/功能：分销商、业支、阿里云业支、VcertCloud）"
    ) in lines


def test_the_notes_sheet_has_one_cell_per_row_so_imports_skip_it(demo):
    notes = load(disclosure())[NOTES_SHEET_TITLE]

    assert all(sum(value is not None for value in row) <= 1 for row in notes.iter_rows(values_only=True))


# --- The English disclosure table -----------------------------------------------------------------


def test_the_english_table_has_english_headers(demo):
    assert table_rows(disclosure(lang="en"))[0] == list(FILE_HEADERS["en"])


def test_the_english_table_names_categories_purposes_and_actions_in_english(demo):
    # The service has no English name: it is shown in Chinese, marked as such.
    row = row_for(table_rows(disclosure(lang="en")), "身份认证服务 [Chinese only]", "北京银联商务")

    assert row[2] == "Name; Resident ID number; Phone number; Bank card number"
    assert row[3] == "Identity verification"
    assert row[4] == "Collect, store, use, process, transmit, provide, delete, etc."


def test_the_english_table_keeps_an_unmapped_item_verbatim():
    operation = make_operation(data_items=("姓名", "神秘字段"))
    assert DataItem.objects.filter(operation=operation, category__isnull=True).exists()

    assert table_rows(disclosure(lang="en"))[1][2] == "Name; 神秘字段 [Chinese only]"


# --- CSV --------------------------------------------------------------------------------------------


def test_the_csv_is_utf8_with_a_bom_and_the_itrus_headers(demo):
    data = disclosure(fmt="csv")

    assert data.startswith("\ufeff".encode())
    assert csv_rows(data)[0] == [*ITRUS_HEADERS, "境外接收方所在国家或地区"]
    assert len(csv_rows(data)) == 44


def test_the_csv_can_be_written_in_gb18030(demo):
    data = disclosure(fmt="csv", encoding="gb18030")

    assert csv_rows(data, "gb18030") == csv_rows(disclosure(fmt="csv"))


def test_the_csv_is_a_clean_table_without_marks_by_default(demo):
    rows = csv_rows(disclosure(fmt="csv"))

    assert row_for(rows, "身份认证服务", "北京银联商务")[2] == "姓名、身份证号、手机号、银行卡号"


def test_publication_marks_star_sensitive_items_and_name_the_countries_of_cross_border_recipients(demo):
    rows = csv_rows(disclosure(fmt="csv", marks=True))

    assert row_for(rows, "身份认证服务", "北京银联商务")[2] == "姓名、身份证号*、手机号、银行卡号*"
    assert row_for(rows, "分销商", "Digicert")[1].endswith("［境外：比利时、英国、意大利、波兰、美国］")


def test_an_unknown_format_language_or_encoding_is_refused():
    for options in ({"fmt": "pdf"}, {"lang": "fr"}, {"fmt": "csv", "encoding": "latin-1"}):
        with pytest.raises(ExportError):
            disclosure(**options)


# --- Round trip -------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_the_chinese_table_re_imports_into_the_same_operations_processors_and_categories(demo, fmt):
    data = disclosure(Operation.objects.filter(service__controller=demo), fmt=fmt)
    copy = make_controller(code="itrus-copy")
    processors_before = Processor.objects.count()

    report = import_register(data, controller=copy, file_name=f"export.{fmt}")

    assert report.ok, report.as_text()
    assert Processor.objects.count() == processors_before
    assert register_state(copy) == register_state(demo)


# --- Formula injection ------------------------------------------------------------------------------


@pytest.fixture
def hostile_processor() -> Processor:
    processor = make_processor(name_en='=HYPERLINK("http://evil.example","click")')
    make_operation(processor=processor)
    return processor


def test_a_name_starting_with_equals_is_quoted_text_in_the_xlsx(hostile_processor):
    cell = load(disclosure()).worksheets[0]["B2"]

    assert cell.value == '\'=HYPERLINK("http://evil.example","click")'
    assert cell.data_type == "s"


def test_a_name_starting_with_equals_is_quoted_in_the_csv(hostile_processor):
    assert csv_rows(disclosure(fmt="csv"))[1][1] == '\'=HYPERLINK("http://evil.example","click")'


def test_a_formula_in_the_first_data_item_is_quoted_once_in_a_plain_cell():
    make_operation(data_items=("=1+1", "姓名"))

    assert load(disclosure()).worksheets[0]["C2"].value == "'=1+1、姓名"


def test_a_formula_in_the_first_data_item_is_quoted_inside_rich_text():
    make_operation(data_items=("=1+1", "身份证号"))
    cell = load(disclosure()).worksheets[0]["C2"]

    assert str(cell.value) == "'=1+1、身份证号"


def test_a_phone_starting_with_plus_is_quoted_in_the_workbook():
    make_processor(name_en="Overseas Ltd", contact_phone="+1 555 0100")
    rows = list(load(workbook_bytes())["Processors"].iter_rows(values_only=True))
    phone = rows[0].index("contact_phone")

    assert "'+1 555 0100" in [row[phone] for row in rows[1:]]


def test_control_characters_an_xlsx_cannot_hold_are_dropped_rather_than_failing_the_export():
    # Saved before names refused control characters: the export must still cope with such a row.
    processor = make_processor()
    Processor.objects.filter(pk=processor.pk).update(name_zh="控制\x0b字符有限公司")
    make_operation(processor=processor)

    assert table_rows(disclosure())[1][1] == "控制字符有限公司"


@given(st.text())
def test_unneutralise_undoes_neutralise_for_any_text(text):
    assert unneutralise(neutralise(text)) == text


@given(st.text())
def test_neutralised_text_never_starts_a_formula(text):
    assert neutralise(text)[:1] not in {"=", "+", "-", "@", "\t", "\r"}


def test_numbers_dates_and_booleans_are_not_neutralised():
    for value in (-5, 3.5, datetime.date(2024, 5, 20), True, None):
        assert neutralise(value) == value


# --- Filters ------------------------------------------------------------------------------------


def test_filters_select_what_is_exported(demo):
    identity = operations_for_export({"category": "identity"})
    rows = table_rows(disclosure(identity))[1:]

    assert len(rows) == identity.count() < 43
    assert "短信服务" not in {row[0] for row in rows}


def test_filters_take_lists_booleans_and_dates(demo):
    selected = operations_for_export(
        {
            "controller": "itrus",
            "cross_border": True,
            "status": ["active"],
            "as_of": datetime.date(2024, 6, 1),
        }
    )

    assert selected.count() == 4


def test_invalid_filters_raise_an_error_naming_the_parameter():
    with pytest.raises(ExportFilterError) as raised:
        operations_for_export({"category": "no-such-category"})

    assert "category" in raised.value.errors
    assert "no-such-category" in str(raised.value)


# --- Queries --------------------------------------------------------------------------------------


def build_operations(count: int) -> None:
    controller = make_controller()
    group = make_processor(name_zh="测试集团", kind=Processor.Kind.GROUP)
    processors = [group] + [make_processor(member_of=group if index % 2 else None) for index in range(9)]
    service_list = [make_service(controller) for _ in range(count // len(processors) + 1)]
    for index in range(count):
        make_operation(
            service=service_list[index // len(processors)],
            processor=processors[index % len(processors)],
            data_items=("姓名", "身份证号", "未知字段"),
        )


@pytest.mark.parametrize("count", [10, 300])
def test_a_disclosure_export_takes_the_same_queries_for_10_and_300_operations(
    count, django_assert_num_queries
):
    build_operations(count)

    with django_assert_num_queries(DISCLOSURE_QUERIES):
        disclosure()


@pytest.mark.parametrize("params", [{}, {"ordering": "-processor"}, {"cross_border": "false"}])
def test_a_disclosure_export_takes_4_queries_a_chunk_of_operations(
    params, monkeypatch, django_assert_num_queries
):
    build_operations(60)
    monkeypatch.setattr("processors.disclosure.rows.CHUNK_SIZE", 7)
    operations = operations_for_export(params)

    # Extra-sensitive categories and operations, then items, purposes, actions and members per chunk.
    with django_assert_num_queries(2 + 4 * math.ceil(60 / 7)):
        assert sum(1 for _ in rows_from_operations(operations)) == 60


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"ordering": "-processor"},
        {"ordering": "service"},
        {"ordering": "-effective_from"},
        {"sensitive": True},
    ],
)
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_chunks_of_operations_give_the_rows_one_chunk_gives(demo, params, lang, monkeypatch):
    operations = operations_for_export(params)
    one_chunk = list(rows_from_operations(operations, lang=lang, marks=True))
    monkeypatch.setattr("processors.disclosure.rows.CHUNK_SIZE", 5)

    assert list(rows_from_operations(operations, lang=lang, marks=True)) == one_chunk
    assert any(row.data_items for row in one_chunk)
    assert any(row.recipient_name != row.recipient for row in one_chunk)  # group members, marks


@pytest.mark.parametrize("count", [10, 300])
def test_a_workbook_export_takes_the_same_queries_for_10_and_300_operations(count, django_assert_num_queries):
    build_operations(count)

    with django_assert_num_queries(WORKBOOK_QUERIES):
        workbook_bytes()


# --- The workbook ---------------------------------------------------------------------------------


def test_the_workbook_has_every_sheet_with_its_headers(demo):
    workbook = load(workbook_bytes())

    assert workbook.sheetnames == [spec.name for spec in WORKBOOK_SHEETS]
    for spec in WORKBOOK_SHEETS:
        assert [cell.value for cell in workbook[spec.name][1]] == spec.headers


def test_the_workbook_has_one_row_per_operation_and_per_data_item(demo):
    workbook = load(workbook_bytes())

    assert workbook["Operations"].max_row - 1 == Operation.objects.count() == 43
    assert workbook["DataItems"].max_row - 1 == DataItem.objects.count()


def test_the_workbook_holds_all_reference_data_and_the_selected_operations(demo):
    workbook = load(workbook_bytes(operations_for_export({"service": "短信服务"})))

    assert workbook["Operations"].max_row - 1 == 8
    assert workbook["Processors"].max_row - 1 == Processor.objects.count()
    assert workbook["Categories"].max_row - 1 == DataCategory.objects.count()
    assert workbook["Services"].max_row - 1 == demo.services.count()


def test_the_workbook_writes_values_that_read_back_without_loss():
    operation = make_operation(
        purposes=("identity_verification", "esign"),
        cross_border=True,
        destination_countries=["US", "GB"],
        effective_from=datetime.date(2024, 5, 20),
        annual_subjects=1200,
    )
    sheet = load(workbook_bytes())["Operations"]
    row = dict(zip([cell.value for cell in sheet[1]], [cell.value for cell in sheet[2]], strict=True))

    assert row["controller"] == operation.service.controller.code
    assert row["processor"] == operation.processor.primary_name
    assert row["effective_from"] == datetime.datetime(2024, 5, 20)
    assert row["purposes"] == "esign;identity_verification"
    assert row["cross_border"] is True
    assert row["destination_countries"] == "GB;US"
    assert row["annual_subjects"] == 1200
    assert row["feature_necessary"] is None
    assert row["relationship"] is None


def test_every_workbook_column_is_documented():
    undocumented = [
        f"{spec.name}.{column.header}"
        for spec in WORKBOOK_SHEETS
        for column in spec.columns
        if not spec.column_doc(column)
    ]

    assert undocumented == []


def test_the_same_register_gives_the_same_workbook_cells(demo):
    def cells(data: bytes) -> list:
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
        return [list(sheet.iter_rows(values_only=True)) for sheet in workbook.worksheets]

    assert cells(workbook_bytes()) == cells(workbook_bytes())


# --- The command ----------------------------------------------------------------------------------


def test_export_register_writes_the_filtered_table(demo, tmp_path):
    path = tmp_path / "sms.csv"
    out = io.StringIO()

    call_command("export_register", str(path), "--service", "短信服务", stdout=out)

    assert len(csv_rows(path.read_bytes())) == 1 + 8
    assert "8" in out.getvalue()


def test_export_register_writes_the_workbook(demo, tmp_path):
    path = tmp_path / "register.xlsx"

    call_command("export_register", str(path), "--shape", "workbook", stdout=io.StringIO())

    assert load(path.read_bytes()).sheetnames[-1] == "DataItems"


def test_export_register_fails_with_a_clear_message_on_an_unknown_category(tmp_path):
    path = tmp_path / "out.xlsx"

    with pytest.raises(CommandError, match="no-such-category"):
        call_command("export_register", str(path), "--category", "no-such-category")

    assert not path.exists()
    assert not list(tmp_path.iterdir())


def test_export_register_needs_a_format_it_can_tell(tmp_path):
    from django.utils import translation

    with translation.override("en"), pytest.raises(CommandError, match=r"\.xlsx or \.csv"):
        call_command("export_register", str(tmp_path / "out.txt"))


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_exported_disclosure_header_is_recognised_by_the_importer(lang):
    from processors.spreadsheets.columns import DISCLOSURE_COLUMNS

    fields = [DISCLOSURE_COLUMNS.field_for(header, None) for header in FILE_HEADERS[lang]]
    assert fields[:5] == ["service", "recipient", "data_items", "purpose", "actions"]
