import csv
import hashlib
import io
import math
import random
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models import AutoField, Max
from django.test.utils import CaptureQueriesContext
from django.utils import translation

from processors import services
from processors.models import DataItem, Operation, Processor, Relationship, Service, SharingMethod
from processors.spreadsheets import importer
from processors.spreadsheets.importer import import_register
from tests.builders import make_controller, make_processor

ROOT = Path(__file__).resolve().parent.parent
ITRUS_TABLE = ROOT / "fixtures" / "itrus-sdk-table.tsv"
DATA = Path(__file__).resolve().parent / "data"

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def english():
    # The assertions read the English messages; the default language is Chinese.
    with translation.override("en"):
        yield


@pytest.fixture
def controller():
    return make_controller(code="itrus", name_zh="北京天威诚信电子商务服务有限公司")


def run_import(path: Path, controller, **options):
    return import_register(path, controller=controller, file_name=path.name, **options)


def register_snapshot(controller) -> list[tuple]:
    """Everything an import decides, in a form that compares across file formats."""
    operations = Operation.objects.filter(service__controller=controller).prefetch_related(
        "data_items__category", "purposes", "actions"
    )
    return sorted(
        (
            operation.service.name,
            operation.processor.name_key,
            operation.processor.kind,
            operation.processor.contact_phone,
            operation.recipient_qualifier,
            tuple(
                (item.position, item.text, item.category and item.category.code)
                for item in operation.data_items.all()
            ),
            tuple(sorted(purpose.code for purpose in operation.purposes.all())),
            tuple(sorted(action.code for action in operation.actions.all())),
            operation.actions_open_ended,
            operation.source_text,
        )
        for operation in operations.select_related("service", "processor")
    )


def row_counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in (Processor, Service, Operation, DataItem)}


def xlsx_copy_of_the_itrus_table(directory: Path) -> Path:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "第三方共享清单"
    for line in ITRUS_TABLE.read_text(encoding="utf-8").splitlines():
        sheet.append(line.split("\t"))
    path = directory / "itrus-sdk-table.xlsx"
    workbook.save(path)
    return path


# --- the iTrus table ------------------------------------------------------------------------------


def test_importing_the_itrus_table_creates_43_operations(controller):
    report = run_import(ITRUS_TABLE, controller)

    assert report.ok and report.committed
    assert report.rows == 43
    assert report.counts["operations"].created == 43
    assert Operation.objects.filter(service__controller=controller).count() == 43


def test_the_itrus_table_gives_two_groups_with_their_members(controller):
    run_import(ITRUS_TABLE, controller)

    arbitration = Processor.objects.get(name_zh="仲裁委")
    authorities = Processor.objects.get(name_en="Digicert, Certum, GlobalSign, Sectigo, Actalis")
    assert {arbitration.kind, authorities.kind} == {Processor.Kind.GROUP}
    assert arbitration.members.count() == 7
    assert sorted(authorities.members.values_list("name_en", flat=True)) == [
        "Actalis",
        "Certum",
        "Digicert",
        "GlobalSign",
        "Sectigo",
    ]
    assert Operation.objects.filter(processor=authorities).count() == 4
    assert Processor.objects.count() == 46


def test_phone_numbers_and_filings_become_processor_facts(controller):
    run_import(ITRUS_TABLE, controller)

    assert Processor.objects.get(name_zh="北京银联商务有限公司").contact_phone == "95534"
    chain = Processor.objects.get(name_zh="至信链")
    assert chain.icp_filing == "京ICP备19056263号-1"
    assert chain.public_security_filing == "京公网安备 11010702002038号"


def test_a_phone_given_on_one_row_only_is_kept_for_the_processor(controller):
    # 金联汇通 has its phone on row 3 and none on row 33.
    run_import(ITRUS_TABLE, controller)

    assert Processor.objects.get(name_zh="金联汇通信息技术有限公司").contact_phone == "010-56311739"


def test_a_qualifier_is_kept_on_the_operation_not_in_the_processor_name(controller):
    run_import(ITRUS_TABLE, controller)

    operation = Operation.objects.get(service__name="案件处理渠道")
    assert operation.processor.name_zh == "法证链科技创新有限公司"
    assert operation.recipient_qualifier == "及其合作机构"


def test_the_published_texts_and_the_whole_row_are_kept_verbatim(controller):
    run_import(ITRUS_TABLE, controller)

    operation = Operation.objects.get(service__name="实名认证服务")
    assert operation.source_text == ITRUS_TABLE.read_text(encoding="utf-8").splitlines()[1]
    assert operation.actions_text == "收集、存储、使用、加工、传输、提供、删除等"
    assert operation.actions_open_ended
    assert operation.actions.count() == 7
    assert operation.data_items_text.startswith("姓名、身份证号、人像图像")


def test_the_same_table_as_xlsx_gives_the_same_register(controller, tmp_path):
    run_import(ITRUS_TABLE, controller)
    from_tsv = register_snapshot(controller)
    other = make_controller()

    report = run_import(xlsx_copy_of_the_itrus_table(tmp_path), other)

    assert report.ok, report.as_text()
    assert register_snapshot(other) == from_tsv


def test_the_same_table_as_gbk_csv_gives_the_same_register(controller):
    run_import(ITRUS_TABLE, controller)
    from_tsv = [row[:-1] for row in register_snapshot(controller)]  # source_text differs by delimiter
    other = make_controller()

    report = run_import(DATA / "itrus-sdk-table-gbk.csv", other)

    assert report.ok, report.as_text()
    assert [row[:-1] for row in register_snapshot(other)] == from_tsv


def test_pasted_tab_separated_text_imports_like_the_file(controller):
    report = import_register(
        ITRUS_TABLE.read_text(encoding="utf-8"), controller=controller, file_name="pasted"
    )

    assert report.ok
    assert report.counts["operations"].created == 43


def test_a_dry_run_writes_nothing_but_reports_the_same_counts(controller):
    before = row_counts()

    preview = run_import(ITRUS_TABLE, controller, dry_run=True)

    assert row_counts() == before
    assert not preview.committed
    real = run_import(ITRUS_TABLE, controller)
    assert preview.to_dict()["counts"] == real.to_dict()["counts"]


def test_importing_twice_changes_nothing(controller):
    run_import(ITRUS_TABLE, controller)
    counts = row_counts()
    last_change = (
        Operation.objects.aggregate(Max("updated_at")),
        Processor.objects.aggregate(Max("updated_at")),
    )

    report = run_import(ITRUS_TABLE, controller)

    assert row_counts() == counts
    assert (
        Operation.objects.aggregate(Max("updated_at")),
        Processor.objects.aggregate(Max("updated_at")),
    ) == last_change
    for entity in ("processors", "services", "operations"):
        assert report.counts[entity].created == report.counts[entity].changed == 0
    assert report.counts["operations"].unchanged == 43


def test_reimporting_an_unchanged_table_costs_the_same_queries_for_5_or_43_rows(controller, tmp_path):
    small = tmp_path / "small.tsv"
    small.write_text("\n".join(ITRUS_TABLE.read_text(encoding="utf-8").splitlines()[:6]), encoding="utf-8")
    other = make_controller()
    run_import(ITRUS_TABLE, controller)
    run_import(small, other)

    with CaptureQueriesContext(connection) as large_run:
        run_import(ITRUS_TABLE, controller)
    with CaptureQueriesContext(connection) as small_run:
        run_import(small, other)

    assert len(large_run) == len(small_run)


def test_a_classified_operation_is_not_duplicated_when_the_table_is_imported_again(controller):
    run_import(ITRUS_TABLE, controller)
    operation = Operation.objects.get(service__name="电子发票服务")
    services.operation_update(operation=operation, relationship=Relationship.ENTRUSTED)

    report = run_import(ITRUS_TABLE, controller)

    assert report.counts["operations"].unchanged == 43
    operation.refresh_from_db()
    assert operation.relationship == Relationship.ENTRUSTED


def test_progress_reports_the_rows_done_after_each_chunk(controller, monkeypatch):
    monkeypatch.setattr(importer, "CHUNK_ROWS", 20)
    calls = []

    run_import(ITRUS_TABLE, controller, progress=calls.append)

    assert calls == [20, 40, 43]


def test_a_workbook_sheet_without_any_known_header_is_skipped_with_a_warning(controller, tmp_path):
    path = xlsx_copy_of_the_itrus_table(tmp_path)
    workbook = openpyxl.load_workbook(path)
    workbook.create_sheet("填写说明", 0).append(["请按模板填写", "不要改动表头"])
    workbook.save(path)

    report = run_import(path, controller)

    assert report.ok
    assert [
        (warning.code, warning.sheet) for warning in report.warnings if warning.code == "sheet_skipped"
    ] == [("sheet_skipped", "填写说明")]
    assert report.counts["operations"].created == 43


def test_a_different_row_for_the_same_service_and_recipient_is_an_error(controller, tmp_path):
    lines = ITRUS_TABLE.read_text(encoding="utf-8").splitlines()
    path = tmp_path / "repeated.tsv"
    changed = lines[2].rsplit("\t", 1)[0] + "\t收集"
    assert changed != lines[2]
    path.write_text("\n".join([*lines[:3], changed]), encoding="utf-8")

    report = run_import(path, controller)

    assert [(error.code, error.row) for error in report.errors] == [("row_repeated", 4)]
    assert Operation.objects.count() == 0


def test_a_row_repeating_another_exactly_is_imported_once_with_a_warning(controller, tmp_path):
    lines = ITRUS_TABLE.read_text(encoding="utf-8").splitlines()
    path = tmp_path / "repeated.tsv"
    path.write_text("\n".join([*lines[:3], lines[2]]), encoding="utf-8")

    report = run_import(path, controller)

    assert report.ok, report.as_text()
    assert [
        (warning.code, warning.row) for warning in report.warnings if warning.code == "row_duplicate"
    ] == [("row_duplicate", 4)]
    assert Operation.objects.count() == 2


# --- headers --------------------------------------------------------------------------------------


def test_an_unknown_header_is_a_located_error_and_nothing_is_written(controller):
    before = row_counts()

    report = run_import(DATA / "unknown-header.tsv", controller)

    assert not report.ok
    [error] = report.errors
    assert (error.code, error.row, error.column, error.header) == ("header_unknown", 1, "D", "备注")
    assert row_counts() == before


def test_a_header_mapped_by_the_caller_is_read_as_that_field(controller):
    report = run_import(
        DATA / "custom-header.tsv", controller, header_map={"合作单位": "recipient", "备注": "ignore"}
    )

    assert report.ok, report.as_text()
    operation = Operation.objects.get()
    assert operation.processor.name_zh == "北京亿美软通科技有限公司"
    assert operation.processor.contact_phone == "010-58750664"
    assert "每日发送" in operation.source_text


def test_a_header_map_to_an_unknown_field_is_an_error(controller):
    report = run_import(DATA / "custom-header.tsv", controller, header_map={"合作单位": "partner"})

    assert [error.code for error in report.errors] == ["header_map"]


def test_english_headers_choice_columns_and_a_foreign_country_are_read(controller):
    report = run_import(DATA / "foreign-recipient.csv", controller)

    assert report.ok, report.as_text()
    operation = Operation.objects.get()
    assert operation.processor.name_en == "DigiCert Inc"
    assert operation.processor.country.code == "US"
    assert operation.sharing_method == SharingMethod.SERVER_TRANSFER
    assert operation.relationship == Relationship.PROVISION
    assert operation.cross_border
    assert [country.code for country in operation.destination_countries] == ["US"]
    assert operation.transfer_mechanism == ""


# --- rows -----------------------------------------------------------------------------------------


def test_a_row_with_an_empty_recipient_is_a_located_error_and_nothing_is_written(controller):
    before = row_counts()

    report = run_import(DATA / "empty-recipient.tsv", controller)

    assert not report.ok and not report.committed
    [error] = report.errors
    assert str(error).startswith("row 5, column B (服务主体): ")
    assert row_counts() == before


def test_an_unmapped_item_is_kept_verbatim_and_reported_for_review(controller):
    report = run_import(DATA / "unmapped-item.tsv", controller)

    assert report.ok
    [warning] = report.unmapped_items
    assert (warning.row, warning.column, warning.value) == (2, "C", "星座")
    item = DataItem.objects.get(text="星座")
    assert item.category is None and item.needs_review
    assert DataItem.objects.filter(text="手机号", category__code="basic.phone_number").exists()


def test_near_duplicate_processor_names_are_reported_and_not_merged(controller):
    report = run_import(DATA / "near-duplicates.tsv", controller)

    assert report.ok
    [warning] = [problem for problem in report.warnings if problem.code == "processor_near_duplicate"]
    assert "天聚地合(苏州)科技股份有限公司" in warning.message
    assert Processor.objects.filter(name_zh__startswith="天聚地合").count() == 2


def test_full_and_half_width_spellings_are_one_processor(controller):
    run_import(DATA / "width-variants.tsv", controller)

    processor = Processor.objects.get()
    assert processor.name_zh == "腾讯云计算（北京）有限责任公司"
    assert processor.operations.count() == 2


def test_a_processor_known_by_an_alias_is_reused(controller):
    dingtalk = make_processor(name_zh="钉钉（中国）信息技术有限公司", aliases=["钉钉"])

    run_import(ITRUS_TABLE, controller)

    assert Operation.objects.get(service__name="信息化/售后").processor == dingtalk
    assert not Processor.objects.filter(name_zh="钉钉").exists()


def test_an_existing_contact_is_kept_and_an_empty_one_is_filled(controller):
    sensetime = make_processor(name_zh="北京市商汤科技开发有限公司", contact_phone="010-00000000")
    unionpay = make_processor(name_zh="北京银联商务有限公司")

    report = run_import(ITRUS_TABLE, controller)

    sensetime.refresh_from_db()
    unionpay.refresh_from_db()
    assert sensetime.contact_phone == "010-00000000"
    assert unionpay.contact_phone == "95534"
    assert any(problem.code == "fact_kept" for problem in report.warnings)


# --- files the reader refuses ---------------------------------------------------------------------


def test_an_empty_file_is_refused(controller):
    report = run_import(DATA / "empty.csv", controller)

    assert [error.code for error in report.errors] == ["file"]
    assert "empty" in report.errors[0].message


def test_a_legacy_xls_workbook_is_refused_with_advice(controller, tmp_path):
    path = tmp_path / "register.xls"
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504)  # the OLE2 header of .xls files

    report = run_import(path, controller)

    assert ".xlsx" in report.errors[0].message


def test_a_password_protected_workbook_is_refused(controller, tmp_path):
    path = tmp_path / "register.xlsx"
    # Office wraps an encrypted .xlsx in an OLE2 file holding an "EncryptedPackage" stream.
    path.write_bytes(
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + "EncryptedPackage".encode("utf-16-le") + b"\x00" * 64
    )

    report = run_import(path, controller)

    assert "password" in report.errors[0].message


def test_a_workbook_renamed_to_csv_is_refused(controller, tmp_path):
    renamed = tmp_path / "register.csv"
    renamed.write_bytes(xlsx_copy_of_the_itrus_table(tmp_path).read_bytes())

    report = run_import(renamed, controller)

    assert not report.ok
    assert Operation.objects.count() == 0


def test_a_file_over_the_size_limit_is_refused(controller, settings):
    settings.REGISTER_IMPORT_MAX_BYTES = 1000

    report = run_import(ITRUS_TABLE, controller)

    assert [error.code for error in report.errors] == ["file"]


# --- the report and the command -------------------------------------------------------------------


def test_the_report_is_json_serialisable(controller):
    import json

    report = run_import(DATA / "unmapped-item.tsv", controller)

    data = json.loads(json.dumps(report.to_dict()))
    assert data["counts"]["operations"]["created"] == 1
    assert data["warnings"][0]["location"] == "row 2, column C (处理个人信息范围)"


def test_the_command_imports_and_prints_the_report(controller):
    out = io.StringIO()

    call_command("import_register", str(ITRUS_TABLE), "--controller", "itrus", stdout=out)

    assert "43 created" in out.getvalue()
    assert Operation.objects.count() == 43


def test_the_command_dry_run_writes_nothing(controller):
    call_command("import_register", str(ITRUS_TABLE), "--dry-run", stdout=io.StringIO())

    assert Operation.objects.count() == 0


def test_the_command_fails_with_the_located_errors(controller):
    with pytest.raises(CommandError, match=r"row 5, column B \(服务主体\)"):
        call_command("import_register", str(DATA / "empty-recipient.tsv"), stdout=io.StringIO())


def test_the_command_reads_header_maps(controller):
    call_command(
        "import_register",
        str(DATA / "custom-header.tsv"),
        "--map",
        "合作单位=recipient",
        "--map",
        "备注=ignore",
        stdout=io.StringIO(),
    )

    assert Operation.objects.count() == 1


def test_the_gbk_sample_really_is_gbk():
    raw = (DATA / "itrus-sdk-table-gbk.csv").read_bytes()

    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    assert next(csv.reader(io.StringIO(raw.decode("gbk"))))[0] == "服务/功能名称"


# --- Large generated tables: queries per chunk, not per row ---------------------------------------

SYLLABLES = "安百博诚达丰光海华嘉金锦京康蓝力联明南宁鹏启瑞润森盛泰天通万维鑫信星讯阳一益优远云泽智中卓"


def write_generated_table(path: Path, *, rows: int, processors: int, seed: int = 7) -> Path:
    """A disclosure table of known wording: distinct processors, 3–8 mapped items a row."""
    from processors.models import DataCategory, ProcessingAction, Purpose

    rng = random.Random(seed)
    categories = list(DataCategory.objects.values_list("name_zh", flat=True))
    purposes = list(Purpose.objects.values_list("name_zh", flat=True))
    actions = list(ProcessingAction.objects.values_list("name_zh", flat=True))
    names = []
    while len(names) < processors:
        name = "".join(rng.choices(SYLLABLES, k=6)) + "有限公司"
        if name not in names:
            names.append(name)
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(
            ["服务/功能名称", "服务主体", "处理个人信息范围", "处理个人信息目的", "处理个人信息方式"]
        )
        for number in range(rows):
            writer.writerow(
                [
                    f"功能{number // len(names)}",
                    names[number % len(names)],
                    "、".join(rng.sample(categories, rng.randint(3, 8))),
                    rng.choice(purposes),
                    "、".join(rng.sample(actions, 2)),
                ]
            )
    return path


def counted_import(path: Path, controller) -> tuple[Any, list[str]]:
    with CaptureQueriesContext(connection) as queries:
        report = run_import(path, controller)
    assert report.ok, report.errors[:3]
    return report, [query["sql"] for query in queries.captured_queries]


def test_reimporting_200_or_2000_generated_rows_costs_the_same_queries(tmp_path):
    small = write_generated_table(tmp_path / "small.csv", rows=200, processors=100)
    large = write_generated_table(tmp_path / "large.csv", rows=2000, processors=1000)
    first, second = make_controller(code="small"), make_controller(code="large")
    run_import(small, first)
    run_import(large, second)

    _report, small_queries = counted_import(small, first)
    report, large_queries = counted_import(large, second)

    assert report.counts["operations"].unchanged == 2000
    assert len(large_queries) == len(small_queries)


def test_a_first_import_costs_the_same_queries_per_chunk_whatever_the_rows(tmp_path, monkeypatch):
    monkeypatch.setattr(importer, "CHUNK_ROWS", 200)
    # The chunk loop is what is counted here; the findings judged once at the end write their rows in
    # batches (tests/test_findings_store.py pins that they follow the import).
    monkeypatch.setattr(importer, "findings_refresh", lambda **subjects: None)
    one = write_generated_table(tmp_path / "one.csv", rows=200, processors=200, seed=1)
    two = write_generated_table(tmp_path / "two.csv", rows=400, processors=400, seed=2)
    ten = write_generated_table(tmp_path / "ten.csv", rows=2000, processors=2000, seed=3)

    _report, one_chunk = counted_import(one, make_controller(code="one"))
    _report, two_chunks = counted_import(two, make_controller(code="two"))
    report, ten_chunks = counted_import(ten, make_controller(code="ten"))

    assert report.counts["operations"].created == 2000
    per_chunk = len(two_chunks) - len(one_chunk)
    assert len(ten_chunks) == len(one_chunk) + 9 * per_chunk
    # The INSERTs a chunk of 200 new processors sends: the ORM's bulk inserts of the processors and their
    # history rows (SQLite splits each into batches of its 999 parameters, PostgreSQL sends one), and the
    # four history copies (INSERT … SELECT) of the operations, their two terms and their data items. The
    # driver's own inserts are "N times: INSERT" (executemany) on SQLite and COPY on PostgreSQL.
    inserts = [
        [sql for sql in run if sql.startswith("INSERT")] for run in (one_chunk, two_chunks, ten_chunks)
    ]
    inserts_per_chunk = len(inserts[1]) - len(inserts[0])
    assert inserts_per_chunk == bulk_insert_statements(Processor, 200) + bulk_insert_statements(
        Processor.history.model, 200
    ) + len(["operations", "purposes", "actions", "data items"])
    assert len(inserts[2]) == len(inserts[0]) + 9 * inserts_per_chunk
    other = [
        [sql for sql in run if not sql.startswith("INSERT")] for run in (one_chunk, two_chunks, ten_chunks)
    ]
    per_chunk = len(other[1]) - len(other[0])
    assert len(other[2]) == len(other[0]) + 9 * per_chunk


def bulk_insert_statements(model, count: int) -> int:
    """The INSERT statements ``bulk_create`` sends for ``count`` new rows of ``model`` on this database."""
    fields = [field for field in model._meta.concrete_fields if not isinstance(field, AutoField)]
    return math.ceil(count / max(connection.ops.bulk_batch_size(fields, [None] * count), 1))


# --- The import record ----------------------------------------------------------------------------


def test_every_import_is_recorded_with_its_file_and_result(controller, admin_user):
    from processors.models import Channel, ImportRecord

    report = run_import(ITRUS_TABLE, controller, user=admin_user, channel=Channel.ADMIN)

    record = ImportRecord.objects.get(pk=report.import_record_id)
    assert (record.result, record.channel, record.user, record.shape) == (
        "imported",
        "admin",
        admin_user,
        "disclosure",
    )
    assert record.sha256 == hashlib.sha256(ITRUS_TABLE.read_bytes()).hexdigest()
    assert record.size == ITRUS_TABLE.stat().st_size
    assert record.counts["operations"]["created"] == 43
    assert record.duration_ms is not None


def test_a_failed_import_and_a_dry_run_are_recorded_too(controller):
    from processors.models import ImportRecord

    preview = run_import(ITRUS_TABLE, controller, dry_run=True)
    failed = import_register(b"", controller=controller, file_name="empty.csv")

    assert ImportRecord.objects.get(pk=preview.import_record_id).result == "previewed"
    record = ImportRecord.objects.get(pk=failed.import_record_id)
    assert (record.result, record.problems[0]["code"]) == ("failed", "file")


def test_every_history_row_of_an_import_names_its_record(controller):
    from processors.history import history_search

    report = run_import(ITRUS_TABLE, controller)

    entries = history_search(import_record=report.import_record_id, limit=None)
    assert {entry.model for entry in entries} >= {
        "processors.processor",
        "processors.service",
        "processors.operation",
        "processors.dataitem",
    }
    assert len([entry for entry in entries if entry.model == "processors.operation"]) == 43
    operation_entry = next(entry for entry in entries if entry.model == "processors.operation")
    assert "purposes" in {change.field for change in operation_entry.changes}


def test_a_full_register_workbook_is_recognised_and_not_misread_as_a_table(controller, tmp_path):
    from processors.spreadsheets.export import export_workbook

    run_import(ITRUS_TABLE, controller)
    path = tmp_path / "register.xlsx"
    with path.open("wb") as stream:
        export_workbook(Operation.objects.all(), stream=stream)

    report = run_import(path, controller)

    # Read by the workbook importer (processors/spreadsheets/workbook.py), not as a disclosure table.
    assert report.ok and report.shape == "workbook"
    assert report.counts["operations"].unchanged == Operation.objects.count()


def test_a_value_too_long_for_its_field_is_reported_on_every_row_that_gives_it(controller, tmp_path):
    # Validation results are reused for values that passed; a failing value must fail on each row.
    too_long = "、".join(f"目的{number}" for number in range(120))  # over the 500 characters of the field
    path = tmp_path / "long-purpose.tsv"
    path.write_text(
        "\n".join(
            [
                "服务/功能名称\t服务主体\t处理个人信息范围\t处理个人信息目的\t处理个人信息方式",
                "实名认证\t甲科技有限公司\t姓名\t实名认证\t收集",
                f"实名认证\t乙科技有限公司\t姓名\t{too_long}\t收集",
                f"短信服务\t丙科技有限公司\t手机号\t{too_long}\t收集",
            ]
        ),
        encoding="utf-8",
    )

    report = run_import(path, controller)

    invalid = [problem for problem in report.errors if problem.code == "invalid"]
    assert [(problem.row, problem.column) for problem in invalid] == [(3, "D"), (4, "D")]
    assert not report.committed and Operation.objects.count() == 0
