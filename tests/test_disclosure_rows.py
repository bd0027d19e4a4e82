"""One renderer: the page, the .xlsx, the .csv and a published version show the same disclosure rows."""

import csv
import datetime
import io

import openpyxl
import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl.cell.rich_text import CellRichText, TextBlock

from processors import selectors, services
from processors.disclosure.page import disclosure_table
from processors.disclosure.rows import SENSITIVE_MARK, DisclosureRow, rows_from_operations, rows_from_snapshot
from processors.disclosure.snapshots import snapshot_live
from processors.models import Controller, DataCategory, Processor, PublishedVersion
from processors.spreadsheets.export import export_disclosure, write_disclosure
from processors.spreadsheets.safety import neutralise, strip_illegal_characters
from tests.builders import make_controller, make_operation, make_processor, make_service

pytestmark = pytest.mark.django_db

DAY = datetime.date(2024, 1, 1)


def publish(controller: Controller) -> PublishedVersion:
    return services.version_publish(controller=controller, label="v1", updated_on=DAY, effective_on=DAY)


def page_rows(controller: Controller, snapshot: dict, *, lang: str, marks: bool) -> list[DisclosureRow]:
    table = disclosure_table(controller, snapshot, lang=lang, marks=marks)
    return [line.row for group in table.groups for line in group.rows]


def download(controller: Controller, *, fmt: str, lang: str, marks: bool) -> bytes:
    stream = io.BytesIO()
    operations = selectors.disclosure_operations(controller)
    export_disclosure(operations, stream=stream, fmt=fmt, lang=lang, marks=marks)
    return stream.getvalue()


def xlsx_cells(data: bytes) -> list[list[tuple[str | None, tuple[str, ...]]]]:
    """The table's rows below the header: each cell's text and its bold runs."""
    sheet = openpyxl.load_workbook(io.BytesIO(data), rich_text=True).worksheets[0]
    found = []
    for row in sheet.iter_rows(min_row=2, values_only=True):
        cells = []
        for value in row:
            if isinstance(value, CellRichText):
                runs = [
                    (part.text, bool(part.font.b)) if isinstance(part, TextBlock) else (part, False)
                    for part in value
                ]
                cells.append(("".join(text for text, _ in runs), tuple(text for text, bold in runs if bold)))
            else:
                cells.append((None if value is None else str(value), ()))
        found.append(cells)
    return found


def expected_xlsx_cells(rows: list[DisclosureRow]) -> list[list[tuple[str | None, tuple[str, ...]]]]:
    """What the .xlsx must hold for these rows: cleaned, neutralised text; sensitive items bold."""
    expected = []
    for row in rows:
        cells = [(neutralise(strip_illegal_characters(text)) or None, ()) for text in row.texts()]
        bold = tuple(segment.text for segment in row.data_items if segment.bold and segment.text)
        cells[2] = (cells[2][0], bold)
        expected.append(cells)
    return expected


def csv_cells(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))[1:]


# --- Random registers -------------------------------------------------------------------------------

# Names start with what a spreadsheet could take for a formula; items mix plain, sensitive (身份证号,
# 银行卡号), the controller's own extra (手机号), a composite and an unmapped one.
PREFIXES = ("", "=", "@", "中")
NAMES = st.text(alphabet=st.sampled_from(list("ab Z中文名（）;、")), max_size=6)
ITEMS = ("姓名", "手机号", "身份证号", "银行卡号", "设备标识符", "钉钉审批流，包含姓名手机", "奇怪的东西")
COUNTRIES = ("US", "GB", "HK", "JP")
PURPOSES = ("identity_verification", "esign", "sms_otp")
ACTIONS = ("collect", "store", "use", "delete")


@st.composite
def registers(draw):
    processors = [
        {
            "prefix": draw(st.sampled_from(PREFIXES)),
            "name_en": draw(NAMES),
            "phone": draw(st.sampled_from(["", "010-12345678"])),
            "country": draw(st.sampled_from(["", "CN", "US"])),
            "member": draw(st.booleans()),
        }
        for _ in range(draw(st.integers(1, 4)))
    ]
    service_specs = [(draw(st.sampled_from(PREFIXES)), draw(NAMES)) for _ in range(draw(st.integers(1, 3)))]
    pairs = draw(
        st.lists(
            st.tuples(st.integers(0, len(service_specs) - 1), st.integers(0, len(processors) - 1)),
            min_size=1,
            max_size=5,
            unique=True,
        )
    )
    operations = []
    for service, processor in pairs:
        items = draw(st.lists(st.sampled_from(ITEMS), max_size=4, unique=True))
        cross_border = draw(st.booleans())
        operations.append(
            {
                "service": service,
                "processor": processor,
                "data_items": items,
                "open_ended": draw(st.booleans()),
                "purposes": draw(st.sets(st.sampled_from(PURPOSES))),
                "actions": draw(st.sets(st.sampled_from(ACTIONS))),
                "fields": {
                    "recipient_qualifier": draw(st.sampled_from(["", "其关联公司"])),
                    "purpose_text": draw(st.sampled_from(["", "实名认证"])),
                    "actions_text": draw(st.sampled_from(["", "收集、存储"])),
                    "actions_open_ended": draw(st.booleans()),
                    "cross_border": cross_border,
                    # A cross-border flow may have no country recorded: the mark must say so plainly.
                    "destination_countries": (
                        sorted(draw(st.sets(st.sampled_from(COUNTRIES)))) if cross_border else []
                    ),
                },
            }
        )
    return {
        "processors": processors,
        "services": service_specs,
        "operations": operations,
        "extra_sensitive": draw(st.booleans()),
    }


def build(register: dict) -> Controller:
    controller = make_controller(country="CN")
    if register["extra_sensitive"]:
        controller.extra_sensitive_categories.add(DataCategory.objects.get(code="basic.phone_number"))
    group = make_processor(name_zh="测试集团", name_en="Test group", kind=Processor.Kind.GROUP)
    recipients = [group]
    for index, spec in enumerate(register["processors"]):
        recipients.append(
            make_processor(
                name_zh=f"{spec['prefix']}接收方{index}",
                name_en=spec["name_en"],
                contact_phone=spec["phone"],
                country=spec["country"],
                member_of=group if spec["member"] else None,
            )
        )
    made = [
        make_service(controller, name=f"{prefix}服务{index}", name_en=name_en)
        for index, (prefix, name_en) in enumerate(register["services"])
    ]
    for spec in register["operations"]:
        items = spec["data_items"]
        text = "、".join(items) + ("等" if spec["open_ended"] and items else "")
        make_operation(
            service=made[spec["service"]],
            # The group stands in for the first recipient, so groups with and without members occur.
            processor=recipients[spec["processor"]] if spec["processor"] else group,
            data_items=items,
            data_items_text=text or "",
            purposes=sorted(spec["purposes"]),
            actions=sorted(spec["actions"]),
            **spec["fields"],
        )
    return controller


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(register=registers(), lang=st.sampled_from(["zh", "en"]), marks=st.booleans())
def test_the_page_the_xlsx_the_csv_and_a_published_version_show_the_same_rows(register, lang, marks):
    with transaction.atomic():
        controller = build(register)
        version = publish(controller)

        page = page_rows(controller, snapshot_live(controller), lang=lang, marks=marks)
        live = list(rows_from_operations(selectors.disclosure_operations(controller), lang=lang, marks=marks))
        published = page_rows(controller, version.snapshot, lang=lang, marks=marks)

        assert page == live
        assert published == page
        assert xlsx_cells(download(controller, fmt="xlsx", lang=lang, marks=marks)) == expected_xlsx_cells(
            page
        )
        mark = SENSITIVE_MARK if marks else ""
        assert csv_cells(download(controller, fmt="csv", lang=lang, marks=marks)) == [
            [neutralise(text) for text in row.texts(sensitive_mark=mark)] for row in page
        ]
        # A published version's file comes from the same writer: byte for byte the live table's .csv.
        stream = io.BytesIO()
        write_disclosure(
            rows_from_snapshot(version.snapshot, lang, marks=marks),
            stream=stream,
            fmt="csv",
            lang=lang,
            marks=marks,
        )
        assert stream.getvalue() == download(controller, fmt="csv", lang=lang, marks=marks)
        transaction.set_rollback(True)


# --- Publication marks ------------------------------------------------------------------------------


@pytest.mark.parametrize(("lang", "mark"), [("zh", "［境外］"), ("en", " [cross-border]")])
def test_a_cross_border_recipient_without_a_country_is_marked_abroad_alike_live_and_published(lang, mark):
    processor = make_processor(name_zh="境外接收方", name_en="Recipient abroad")
    operation = make_operation(processor=processor, cross_border=True, destination_countries=[])
    controller = operation.service.controller
    version = publish(controller)

    live = list(rows_from_operations(selectors.disclosure_operations(controller), lang=lang, marks=True))
    published = rows_from_snapshot(version.snapshot, lang, marks=True)

    assert [row.recipient for row in published] == [row.recipient for row in live]
    assert published[0].recipient == f"{processor.name_zh if lang == 'zh' else processor.name_en}{mark}"


def test_a_cross_border_recipient_with_countries_is_marked_with_them():
    operation = make_operation(
        processor=make_processor(name_zh="境外接收方"), cross_border=True, destination_countries=["US", "HK"]
    )
    version = publish(operation.service.controller)

    assert (
        rows_from_snapshot(version.snapshot, "zh", marks=True)[0].recipient
        == "境外接收方［境外：中国香港、美国］"
    )
    assert rows_from_snapshot(version.snapshot, "zh")[0].recipient == "境外接收方"
