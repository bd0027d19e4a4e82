import io

import openpyxl
import pytest
from django.utils import translation

from processors.demo import demo_load
from processors.models import (
    Controller,
    DataCategory,
    DataItem,
    ImportRecord,
    Operation,
    Processor,
    ProcessorAlias,
    Service,
)
from processors.spreadsheets.export import export_workbook
from processors.spreadsheets.importer import import_register

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


@pytest.fixture
def demo() -> Controller:
    demo_load()
    return Controller.objects.get()


def workbook_bytes(controller: Controller) -> bytes:
    stream = io.BytesIO()
    export_workbook(Operation.objects.filter(service__controller=controller), stream=stream)
    return stream.getvalue()


def wipe_register() -> None:
    """Delete operations, services and processors; the taxonomy and the controllers stay."""
    DataItem.objects.all().delete()
    Operation.objects.all().delete()
    Service.objects.all().delete()
    ProcessorAlias.objects.all().delete()
    Processor.objects.filter(member_of__isnull=False).delete()
    Processor.objects.all().delete()


def canonical(controller: Controller) -> set[tuple]:
    operations = Operation.objects.filter(service__controller=controller).prefetch_related(
        "data_items__category", "purposes", "actions"
    )
    return {
        (
            operation.service.name,
            operation.processor.name_key,
            operation.relationship,
            tuple(sorted(item.category.code for item in operation.data_items.all() if item.category)),
            tuple(sorted(purpose.code for purpose in operation.purposes.all())),
            tuple(sorted(action.code for action in operation.actions.all())),
            operation.cross_border,
            tuple(country.code for country in operation.destination_countries),
        )
        for operation in operations.select_related("service", "processor")
    }


def run(data: bytes, controller: Controller, **options):
    return import_register(data, controller=controller, file_name="register.xlsx", **options)


def all_counts(report) -> dict[str, dict[str, int]]:
    return {name: counts.to_dict() for name, counts in report.counts.items()}


def test_a_wiped_register_comes_back_from_its_workbook(demo):
    before = canonical(demo)
    items = DataItem.objects.count()
    data = workbook_bytes(demo)
    wipe_register()
    assert not Operation.objects.exists()

    report = run(data, demo)

    assert report.ok, report.as_text()
    assert report.committed and report.shape == "workbook"
    assert canonical(demo) == before
    assert DataItem.objects.count() == items
    assert report.counts["operations"].created == len(before) == 43
    assert report.counts["data_items"].created == items
    assert report.counts["categories"].created == 0
    assert ImportRecord.objects.get(pk=report.import_record_id).result == ImportRecord.Result.IMPORTED


def test_importing_the_same_workbook_twice_changes_nothing_the_second_time(demo):
    data = workbook_bytes(demo)
    wipe_register()
    assert run(data, demo).ok

    report = run(data, demo)

    assert report.ok, report.as_text()
    counts = all_counts(report)
    assert all(entity["created"] == entity["changed"] == 0 for entity in counts.values()), counts
    assert counts["operations"]["unchanged"] == 43
    assert "unchanged" in report.as_text()


def test_the_demo_workbook_imports_onto_the_demo_unchanged(demo):
    report = run(workbook_bytes(demo), demo)

    assert report.ok, report.as_text()
    assert all(c.created == c.changed == 0 for c in report.counts.values()), all_counts(report)


def _with_cell(data: bytes, sheet: str, header: str, value, row: int = 2) -> bytes:
    workbook = openpyxl.load_workbook(io.BytesIO(data))
    worksheet = workbook[sheet]
    headers = [cell.value for cell in worksheet[1]]
    worksheet.cell(row=row, column=headers.index(header) + 1, value=value)
    stream = io.BytesIO()
    workbook.save(stream)
    return stream.getvalue()


def test_an_unknown_category_code_is_a_located_error_and_nothing_is_written(demo):
    data = workbook_bytes(demo)
    wipe_register()
    first_code = DataCategory.objects.order_by("code").values_list("code", flat=True).first()
    broken = _with_cell(data, "DataItems", "category", first_code + "x")

    report = run(broken, demo)

    assert not report.ok and not report.committed
    [error] = report.errors
    assert (error.code, error.sheet, error.row, error.header) == (
        "reference_unknown",
        "DataItems",
        2,
        "category",
    )
    assert error.column and first_code in error.suggestions
    assert not Operation.objects.exists() and not Processor.objects.exists()
    assert ImportRecord.objects.get(pk=report.import_record_id).result == ImportRecord.Result.FAILED


def test_an_unknown_processor_key_is_a_located_error(demo):
    broken = _with_cell(workbook_bytes(demo), "Operations", "processor", "No such company Ltd")
    before = canonical(demo)

    report = run(broken, demo)

    assert not report.ok
    first, *others = report.errors
    assert (first.code, first.sheet, first.row, first.header) == (
        "reference_unknown",
        "Operations",
        2,
        "processor",
    )
    # The items of the renamed operation no longer name an operation of the file.
    assert {(e.code, e.sheet) for e in others} == {("operation_unknown", "DataItems")}
    assert canonical(demo) == before


def test_an_unreadable_cell_is_a_located_error(demo):
    broken = _with_cell(workbook_bytes(demo), "Operations", "cross_border", "maybe")

    report = run(broken, demo)

    assert [(e.code, e.sheet, e.row, e.header) for e in report.errors] == [
        ("cell_invalid", "Operations", 2, "cross_border")
    ]


def test_rows_of_another_controller_are_refused(demo):
    other = Controller.objects.create(code="other", name_zh="另一家")

    report = run(workbook_bytes(demo), other)

    assert not report.ok
    assert {e.code for e in report.errors} == {"controller_mismatch"}
    assert {e.sheet for e in report.errors} == {"Controllers", "Services", "Operations", "DataItems"}


def test_a_dry_run_writes_nothing_but_counts_exactly(demo):
    data = workbook_bytes(demo)
    wipe_register()

    report = run(data, demo, dry_run=True)

    assert report.ok and not report.committed
    assert report.counts["operations"].created == 43
    assert not Operation.objects.exists() and not Service.objects.exists()
    assert ImportRecord.objects.get(pk=report.import_record_id).result == ImportRecord.Result.PREVIEWED
