"""export_workbook → import_register → export_workbook gives the same cells."""

import datetime
import io

import openpyxl
import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from processors import services
from processors.demo import demo_load
from processors.models import (
    Controller,
    DataItem,
    Operation,
    ProcessingAction,
    Processor,
    ProcessorAlias,
    Purpose,
    Service,
)
from processors.spreadsheets.export import export_workbook
from processors.spreadsheets.importer import import_register
from processors.spreadsheets.workbook_spec import WORKBOOK_SHEETS

pytestmark = pytest.mark.django_db


def export(controller: Controller) -> bytes:
    stream = io.BytesIO()
    export_workbook(Operation.objects.filter(service__controller=controller), stream=stream)
    return stream.getvalue()


def cells(data: bytes) -> dict[str, list[tuple]]:
    workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
    return {spec.name: list(workbook[spec.name].iter_rows(values_only=True)) for spec in WORKBOOK_SHEETS}


def wipe_register() -> None:
    DataItem.objects.all().delete()
    Operation.objects.all().delete()
    Service.objects.all().delete()
    ProcessorAlias.objects.all().delete()
    Processor.objects.filter(member_of__isnull=False).delete()
    Processor.objects.all().delete()


def import_(data: bytes, controller: Controller):
    report = import_register(data, controller=controller, file_name="register.xlsx")
    assert report.ok, report.as_text()
    return report


def test_the_demo_register_round_trips_cell_for_cell():
    demo_load()
    controller = Controller.objects.get()
    first = export(controller)

    report = import_(first, controller)
    assert all(c.created == c.changed == 0 for c in report.counts.values())
    wipe_register()
    import_(first, controller)
    second = export(controller)

    before, after = cells(first), cells(second)
    for spec in WORKBOOK_SHEETS:
        assert after[spec.name] == before[spec.name], spec.name
    assert len(before["Operations"]) == 44


# --- Random registers -------------------------------------------------------------------------------

ALPHABET = list("ab Z=+-@'\t;、中文名Ｆ１")
# Names and other one-line fields refuse control characters; the tab goes only into free text.
texts = st.text(alphabet=st.sampled_from([c for c in ALPHABET if c != "\t"]), max_size=8)
free_texts = st.text(alphabet=st.sampled_from(ALPHABET), max_size=8)
# No tab: names refuse control characters (a leading tab in free text is covered by free_texts).
PREFIXES = ("", "=", "+", "-", "@", "'", "Ｆ", "＝")
ITEMS = ("姓名", "手机号码", "设备标识符", "身份证号", "奇怪的东西", "=公式", "")
COUNTRIES = ("US", "GB", "SG", "JP")
PURPOSES = ("identity_verification", "esign")
ACTIONS = ("collect", "store", "use")
DAY = datetime.date(2024, 1, 1)


@st.composite
def registers(draw):
    controllers = draw(st.integers(1, 2))
    processors = [
        (draw(st.sampled_from(PREFIXES)), draw(texts), draw(texts), draw(st.booleans()))
        for _ in range(draw(st.integers(1, 4)))
    ]
    service_specs = [
        (draw(st.integers(0, controllers - 1)), draw(st.sampled_from(PREFIXES)), draw(texts))
        for _ in range(draw(st.integers(1, 3)))
    ]
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
        start = draw(st.none() | st.integers(0, 400))
        length = draw(st.none() | st.integers(0, 400))
        cross_border = draw(st.booleans())
        operations.append(
            {
                "service": service,
                "processor": processor,
                "data_items": draw(st.lists(st.sampled_from(ITEMS).filter(bool), max_size=4, unique=True)),
                "purposes": draw(st.sets(st.sampled_from(PURPOSES))),
                "actions": draw(st.sets(st.sampled_from(ACTIONS))),
                "fields": {
                    "recipient_qualifier": draw(texts),
                    "usage_scenario": draw(free_texts),
                    "notes": draw(free_texts),
                    "source_text": draw(free_texts),
                    "purpose_text": draw(texts),
                    "actions_open_ended": draw(st.booleans()),
                    "feature_necessary": draw(st.none() | st.booleans()),
                    "cross_border": cross_border,
                    "destination_countries": (
                        sorted(draw(st.sets(st.sampled_from(COUNTRIES)))) if cross_border else []
                    ),
                    "effective_from": None if start is None else DAY + datetime.timedelta(days=start),
                    "effective_to": (
                        None
                        if start is None or length is None
                        else DAY + datetime.timedelta(days=start + length)
                    ),
                    "annual_subjects": draw(st.none() | st.integers(0, 10**6)),
                },
            }
        )
    return controllers, processors, service_specs, operations


def build(controllers, processors, service_specs, operations) -> list[Controller]:
    made = [
        services.controller_create(code=f"c{index}", name_zh=f"控制者{index}") for index in range(controllers)
    ]
    group = None
    recipients = []
    for index, (prefix, name_en, phone, is_member) in enumerate(processors):
        processor = services.processor_create(
            name_zh=f"{prefix}处理者{index}",
            name_en=name_en,
            contact_phone=phone,
            kind=Processor.Kind.GROUP if index == 0 else Processor.Kind.ORGANISATION,
            member_of=group if is_member and index > 0 else None,
        )
        group = group or processor
        recipients.append(processor)
    services_made = [
        services.service_create(controller=made[controller], name=f"{prefix}服务{index}", description=text)
        for index, (controller, prefix, text) in enumerate(service_specs)
    ]
    for spec in operations:
        services.operation_create(
            service=services_made[spec["service"]],
            processor=recipients[spec["processor"]],
            data_items=spec["data_items"],
            purposes=list(Purpose.objects.filter(code__in=spec["purposes"])),
            actions=list(ProcessingAction.objects.filter(code__in=spec["actions"])),
            **spec["fields"],
        )
    return made


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(register=registers())
def test_random_registers_round_trip_cell_for_cell(register):
    with transaction.atomic():
        controllers = build(*register)
        first = {controller.code: export(controller) for controller in controllers}
        wipe_register()
        for controller in controllers:
            import_(first[controller.code], controller)
        for controller in controllers:
            before, after = cells(first[controller.code]), cells(export(controller))
            for spec in WORKBOOK_SHEETS:
                assert after[spec.name] == before[spec.name], spec.name
        transaction.set_rollback(True)
