"""Real published tables (``tests/data/real``) import as they are, and answer what a reader reads off them."""

import datetime
import re
import tomllib
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import translation

from bench.fidelity import CATEGORY_LABELS, answers
from processors.models import Controller, DataItem, Operation, Processor, Service
from processors.spreadsheets.cells import EU_MEMBER_STATES
from processors.spreadsheets.importer import import_register
from processors.spreadsheets.readers import DocumentRows, document_tables, read_rows
from processors.text import normalize_key
from tests.builders import make_controller

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
REAL = Path(__file__).resolve().parent / "data" / "real"
ITRUS_TABLE = ROOT / "fixtures" / "itrus-sdk-table.tsv"
LABELS = {entry["file"]: entry for entry in tomllib.loads((REAL / "labels.toml").read_text("utf-8"))["table"]}


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


def import_file(name: str, controller: Controller, **options):
    path = REAL / name
    return import_register(path, controller=controller, file_name=path.name, **options)


def import_mapped(name: str, controller: Controller, **options):
    """A corpus file imported with the header map its labels give."""
    return import_file(name, controller, header_map=LABELS[name]["header_map"], **options)


def import_every_table(name: str, controller: Controller) -> list:
    """Each table of a corpus file, with the header map its labels give when it needs one."""
    entry = LABELS.get(name, {})
    reports = []
    for found in document_tables((REAL / name).read_bytes(), file_name=name):
        report = import_file(name, controller, table=found.index)
        if not report.ok and entry.get("header_map"):
            report = import_file(name, controller, table=found.index, header_map=entry["header_map"])
        reports.append(report)
    return reports


def operations(controller: Controller):
    return Operation.objects.filter(service__controller=controller).select_related("service", "processor")


def register_snapshot(controller: Controller) -> list[tuple]:
    return sorted(
        (
            operation.service.name,
            operation.processor.name_key,
            operation.processor.contact_phone,
            operation.recipient_qualifier,
            operation.data_items_text,
            operation.purpose_text,
            operation.actions_text,
            tuple((item.position, item.text, item.category_id) for item in operation.data_items.all()),
        )
        for operation in operations(controller).prefetch_related("data_items")
    )


# --- 1. Reading: documents, their tables, record-form lists ----------------------------------------


@pytest.mark.parametrize("name", sorted(LABELS))
def test_every_table_of_every_corpus_file_imports_with_at_most_a_header_map(name):
    controller = make_controller()

    reports = import_every_table(name, controller)

    assert reports, f"{name}: no table found"
    assert all(report.ok for report in reports), [str(problem) for r in reports for problem in r.errors]
    assert sum(report.rows for report in reports) == LABELS[name]["rows"]


def test_a_document_offers_every_table_and_imports_the_one_chosen_by_index():
    rows = read_rows(REAL / "10-retool-subprocessors.md", table=2)

    assert isinstance(rows, DocumentRows)
    assert [found.title for found in rows.tables] == [
        "Infrastructure Subprocessors",
        "Product-Specific Subprocessors",
        "Other Subprocessors",
    ]
    assert rows.chosen.index == 2
    assert next(rows).cells[0] == "Entity Name"


def test_the_report_lists_the_tables_and_the_one_imported():
    report = import_file("11-embrace-subprocessors.md", make_controller(), table=0)

    assert [table["title"] for table in report.tables] == ["United States", "European Union"]
    assert report.table == 0 and report.rows == 2


def test_the_command_imports_table_n_of_a_document():
    make_controller(code="retool")
    out = StringIO()

    call_command("import_register", str(REAL / "10-retool-subprocessors.md"), "--table", "3", stdout=out)

    assert "this is table 3" in out.getvalue()
    assert Operation.objects.filter(service__controller__code="retool").count() == 3


def test_without_a_table_number_the_command_imports_the_main_list():
    # 佳麦 (01): 主要SDK列表 (5 rows) first, 厂商通道SDK (6 rows) second; the main list is the likeliest.
    controller = make_controller(code="jiamai")

    call_command("import_register", str(REAL / "01-jiamai-sdk.md"), "--lang", "en", stdout=StringIO())

    assert operations(controller).count() == 5
    assert operations(controller).filter(service__name="支付宝客户端 SDK").exists()


def test_the_command_prints_the_purposes_an_unknown_purpose_may_mean():
    # 象皮泥 (20): 驱动业务决策分析 names no purpose; the closest in meaning is Analytics (head word 分析).
    make_controller(code="xiangpini")
    out = StringIO()

    call_command("import_register", str(REAL / "20-xiangpini-sharing.md"), "--lang", "en", stdout=out)

    line = next(line for line in out.getvalue().splitlines() if "驱动业务决策分析" in line)
    assert "is not a purpose this register knows" in line
    assert line.endswith("Suggestions: Analytics.")


def test_a_record_form_list_is_one_table_with_a_row_per_record():
    [table] = document_tables((REAL / "02-xuexiqiangguo-sdk.md").read_bytes(), file_name="02.md")

    assert len(table.rows) - 1 == 13
    assert table.rows[1][0] == "OPPO推送SDK" and "OPPO 广东移动通信有限公司" in table.rows[1]
    assert "运营方" in table.header and "收集个人信息类型" in table.header


def test_records_that_name_one_field_with_different_keys_share_its_column():
    controller = make_controller()

    report = import_file("05-simpfun-sdk.md", controller)

    assert report.ok, report.as_text()
    assert sorted(operations(controller).values_list("processor__name_zh", flat=True)) == [
        "微软（中国）有限公司",
        "支付宝支付科技有限公司",
        "深圳市腾讯计算机系统有限公司",
    ]


def test_a_record_without_a_company_names_its_sdk_as_the_recipient():
    controller = make_controller()

    import_file("07-sanuya-sdk.md", controller)

    assert Processor.objects.filter(name_en="EventBus SDK").exists()
    assert operations(controller).count() == 10


def test_the_itrus_policy_text_gives_the_same_register_as_the_tsv():
    tsv, policy = make_controller(code="tsv"), make_controller(code="policy")

    assert import_register(ITRUS_TABLE, controller=tsv, file_name=ITRUS_TABLE.name).ok
    report = import_file("itrus-policy.txt", policy)

    assert report.ok, report.as_text()
    assert register_snapshot(policy) == register_snapshot(tsv)
    assert len(register_snapshot(tsv)) == 43


@pytest.mark.parametrize("name", ["itrus-sdk-table.docx", "itrus-sdk-table.html"])
def test_the_word_and_html_forms_of_the_itrus_table_give_the_same_register(name):
    tsv, other = make_controller(code="tsv"), make_controller(code="other")
    import_register(ITRUS_TABLE, controller=tsv, file_name=ITRUS_TABLE.name)

    assert import_file(name, other).ok
    assert register_snapshot(other) == register_snapshot(tsv)


def register_state(controller: Controller) -> list[tuple]:
    """Everything an import writes for a controller, comparable across files: per operation its service,
    recipient (kind, country, contacts), published texts, data items with categories and match kinds,
    purposes, actions and countries."""
    rows = []
    for operation in operations(controller).prefetch_related("data_items__category", "purposes", "actions"):
        processor = operation.processor
        rows.append(
            (
                operation.service.name,
                (processor.name_key, processor.kind, processor.country.code or "", processor.contact_phone),
                operation.recipient_qualifier,
                operation.data_items_text,
                operation.purpose_text,
                operation.actions_text,
                tuple(
                    (item.position, item.text, item.category.code if item.category else None, item.match)
                    for item in operation.data_items.all()
                ),
                tuple(sorted(purpose.code for purpose in operation.purposes.all())),
                tuple(sorted(action.code for action in operation.actions.all())),
                tuple(country.code for country in operation.processing_countries),
                tuple(country.code for country in operation.destination_countries),
                operation.cross_border,
                operation.relationship,
                operation.sharing_method,
            )
        )
    return sorted(rows)


def itrus_forms(tmp_path: Path) -> dict[str, Path]:
    """The iTrus table as TSV, .xlsx, GBK .csv (both built here from the TSV's cells), HTML and .docx."""
    import csv

    import openpyxl

    rows = [line.split("\t") for line in ITRUS_TABLE.read_text(encoding="utf-8").splitlines() if line]
    workbook = openpyxl.Workbook()
    for cells in rows:
        workbook.active.append(cells)
    workbook.save(tmp_path / "itrus.xlsx")
    with open(tmp_path / "itrus.csv", "w", encoding="gbk", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return {
        "tsv": ITRUS_TABLE,
        "xlsx": tmp_path / "itrus.xlsx",
        "csv": tmp_path / "itrus.csv",
        "html": REAL / "itrus-sdk-table.html",
        "docx": REAL / "itrus-sdk-table.docx",
    }


def test_the_tsv_xlsx_gbk_csv_html_and_docx_forms_of_the_itrus_table_give_the_same_register(tmp_path):
    states = {}
    for form, path in itrus_forms(tmp_path).items():
        controller = make_controller(code=f"itrus-{form}")
        report = import_register(path, controller=controller, file_name=path.name)
        assert report.ok, (form, report.as_text())
        states[form] = register_state(controller)

    assert len(states["tsv"]) == 43
    assert any(item[3] == "ocr" for row in states["tsv"] for item in row[6])  # match kinds are compared
    for form, state in states.items():
        assert state == states["tsv"], form


# --- 2. Cells ---------------------------------------------------------------------------------------


def test_a_link_cell_that_is_not_a_web_address_is_a_warning_and_the_file_imports():
    controller = make_controller()

    report = import_file("01-jiamai-sdk.md", controller, table=0)

    assert report.ok
    unreadable = [problem for problem in report.warnings if problem.code == "cell_unreadable"]
    assert [problem.value for problem in unreadable][0] == "支付宝客户端 SDK 隐私说明"
    alipay = operations(controller).get(processor__name_zh="支付宝（中国）网络技术有限公司")
    assert alipay.source_text.endswith("\t支付宝客户端 SDK 隐私说明")


def test_markdown_links_keep_their_address():
    controller = make_controller()

    import_file("02-xuexiqiangguo-sdk.md", controller)

    oppo = Processor.objects.get(name_zh="OPPO 广东移动通信有限公司")
    assert oppo.privacy_policy_url == "https://open.oppomobile.com/wiki/doc#id=10288"
    assert oppo.website == "https://open.oppomobile.com/"


def test_line_breaks_in_a_cell_are_list_separators():
    controller = make_controller()

    import_file("08-dcloud-map-sdk.html", controller)

    service = Service.objects.get(controller=controller, name="高德开放平台")
    assert "android.permission.READ_PHONE_STATE" in service.device_permissions.split("\n")


def test_an_empty_marker_is_an_empty_cell():
    controller = make_controller()

    import_file("01-jiamai-sdk.md", controller, table=2)

    google = operations(controller).get(service__name="谷歌")
    assert google.source_text.split("\t")[2] == "无"
    assert google.data_items_text == "" and not google.data_items.exists()


def test_an_annotation_in_a_name_is_kept_as_its_qualifier():
    controller = make_controller()

    import_file("12-bento-subprocessors.md", controller)

    operation = operations(controller).get(processor__name_en="Amazon Web Services")
    assert operation.recipient_qualifier == "AWS"


def test_smart_quotes_in_a_cell_read_as_the_straight_quotes_of_the_row_below():
    controller = make_controller()

    report = import_file("24-xunfeng-sharing.md", controller)

    assert report.ok
    assert operations(controller).get(processor__name_zh="商家").purpose_text == '为"巽风集市"商品交易目的'
    assert operations(controller).get(processor__name_zh="卖方").purpose_text == '为"巽风品藏"物品交易目的'
    unmapped = [problem.value for problem in report.warnings if problem.code == "purpose_unmapped"]
    assert '为"巽风集市"商品交易目的' in unmapped and not any("“" in value for value in unmapped)


def test_rows_that_lost_a_merged_number_cell_are_read_under_their_headers():
    controller = make_controller()

    report = import_file("24-xunfeng-sharing.md", controller)

    assert report.ok and report.rows == LABELS["24-xunfeng-sharing.md"]["rows"]
    couriers = operations(controller).filter(purpose_text="为用户提供物流配送服务之需要")
    assert sorted(couriers.values_list("processor__name_zh", flat=True)) == sorted(
        ["顺丰速运", "京东快递", "德邦"]
    )
    assert set(couriers.values_list("usage_scenario", flat=True)) == {"订单交付"}
    assert not Processor.objects.filter(name_zh="订单交付").exists()


def test_footnote_stars_after_a_country_are_dropped_and_the_country_read():
    controller = make_controller()

    report = import_file("21-tattou-subprocessors.md", controller)

    assert report.ok
    stripe = operations(controller).get(processor__name_en="Stripe")
    assert stripe.processing_locations == "United States"
    assert [country.code for country in stripe.processing_countries] == ["US"]
    netlify = operations(controller).get(processor__name_en="Netlify")
    assert netlify.processing_locations == "European Union / United States"
    assert {country.code for country in netlify.processing_countries} == {*EU_MEMBER_STATES, "US"}
    assert not any(problem.code == "location_vague" for problem in report.warnings)


def test_a_product_name_of_several_capitalised_words_is_one_recipient():
    controller = make_controller()

    import_file("21-tattou-subprocessors.md", controller)

    assert operations(controller).filter(processor__name_en="Google Places API").count() == 1
    assert not Processor.objects.filter(name_en__in=["Google", "Places", "API"]).exists()


def test_u_s_with_full_stops_is_the_united_states():
    controller = make_controller()

    import_file("22-ghostquant-subprocessors.md", controller)

    upstash = operations(controller).get(processor__name_en="Upstash")
    assert upstash.processing_locations == "U.S."
    assert [country.code for country in upstash.processing_countries] == ["US"]
    aws = operations(controller).get(processor__name_en="Amazon Web Services")
    assert {country.code for country in aws.processing_countries} == {*EU_MEMBER_STATES, "US", "GB"}


def test_no_personal_data_in_the_items_column_is_no_item_and_no_unmapped_warning():
    controller = make_controller()

    report = import_file("22-ghostquant-subprocessors.md", controller)

    vercel = operations(controller).get(processor__name_en="Vercel")
    assert vercel.data_items_text == "No personal data (static assets only)"
    assert not vercel.data_items.exists()
    unmapped = {problem.value for problem in report.warnings if problem.code == "item_unmapped"}
    assert not any(value.startswith("No personal data") for value in unmapped)


def test_a_phone_glued_to_a_name_becomes_the_contact_phone():
    import_register(ITRUS_TABLE, controller=make_controller(), file_name=ITRUS_TABLE.name)

    assert Processor.objects.get(name_zh="北京市商汤科技开发有限公司").contact_phone == "400-900-5986"


def test_a_legal_basis_the_register_does_not_know_is_a_warning_that_keeps_the_text():
    controller = make_controller()

    report = import_file("13-stakater-subprocessors.md", controller, table=0)

    assert report.ok
    assert {problem.value for problem in report.warnings if problem.code == "cell_unreadable"} == {"GDPR"}
    assert all(operation.source_text.endswith("\tGDPR") for operation in operations(controller))


def without_alipay_face(tmp_path: Path) -> Path:
    """The 学习强国 list, its Alipay record without 人脸信息: the 功能 支付宝人脸识别 alone names it."""
    text = (REAL / "02-xuexiqiangguo-sdk.md").read_text(encoding="utf-8")
    listed = "网络信息（当前网络类型）、人脸信息\n\n官网链接：[https://open.alipay.com/]"
    assert listed in text
    path = tmp_path / "02-without-face.md"
    path.write_text(text.replace(listed, listed.replace("、人脸信息", "")), encoding="utf-8")
    return path


def test_a_data_item_named_only_in_the_purpose_is_recorded_as_an_inferred_item(tmp_path):
    path = without_alipay_face(tmp_path)
    controller = make_controller()

    report = import_register(path, controller=controller, file_name=path.name)

    alipay = operations(controller).get(processor__name_zh="支付宝（中国）网络技术有限公司")
    face = alipay.data_items.get(category__code="biometric.face")
    assert (face.text, face.match) == ("人脸识别", DataItem.Match.INFERRED)
    assert face.position == max(item.position for item in alipay.data_items.all())
    assert [problem.value for problem in report.warnings if problem.code == "item_inferred"] == ["人脸识别"]
    assert answers(controller)["face"] >= {"支付宝（中国）网络技术有限公司"}


def test_the_review_queue_lists_an_inferred_item_with_the_text_it_was_inferred_from(tmp_path, admin_client):
    from django.urls import reverse

    path = without_alipay_face(tmp_path)
    controller = make_controller()
    import_register(path, controller=controller, file_name=path.name)
    face = DataItem.objects.get(operation__service__controller=controller, match=DataItem.Match.INFERRED)

    response = admin_client.get(reverse("admin:processors_dataitem_changelist"), {"unmapped": "true"})

    assert face in response.context["cl"].queryset
    page = response.content.decode()
    assert "据使用目的“支付宝支付，支付宝人脸识别”推断" in page  # the admin speaks Chinese by default
    waiting = admin_client.get(reverse("admin:processors_dataitem_changelist"), {"unmapped": "false"})
    assert face not in waiting.context["cl"].queryset


def test_a_purpose_naming_data_the_row_already_lists_adds_no_inferred_item():
    controller = make_controller()

    import_file("02-xuexiqiangguo-sdk.md", controller)

    alipay = operations(controller).get(processor__name_zh="支付宝（中国）网络技术有限公司")
    assert "人脸识别" in alipay.purpose_text
    assert [item.text for item in alipay.data_items.filter(category__code="biometric.face")] == ["人脸信息"]
    assert not alipay.data_items.filter(match=DataItem.Match.INFERRED).exists()


# --- 3. Shapes ------------------------------------------------------------------------------------


def test_a_sub_processor_list_belongs_to_the_default_service_named_in_the_report():
    controller = make_controller()

    report = import_file("18-stamp-subprocessors.md", controller)

    assert report.ok and report.default_service == "All services"
    assert set(operations(controller).values_list("service__name", flat=True)) == {"All services"}


def test_the_default_service_can_be_named():
    controller = make_controller()

    import_file("15-zephyr-subprocessors.md", controller, default_service="Zephyr")

    assert set(operations(controller).values_list("service__name", flat=True)) == {"Zephyr"}


def test_the_corporate_location_is_the_processors_country_not_a_place_of_processing():
    controller = make_controller()

    import_file("18-stamp-subprocessors.md", controller)

    operation = operations(controller).get(processor__name_en="Amazon Web Services")
    assert operation.processor.country.code == "LU"
    assert not operation.processing_countries
    assert operation.cross_border  # the recipient sits outside the controller's country


def test_locations_of_processing_become_destinations():
    controller = make_controller()

    import_file("16-sage-subprocessors.md", controller)

    operation = operations(controller).get(processor__name_en="Amazon Web Services")
    assert {country.code for country in operation.processing_countries} == {"US", "DE", "IE"}
    assert operation.processing_locations == "USA, Germany, Ireland"
    assert operation.cross_border and {"US", "DE", "IE"} <= {c.code for c in operation.destination_countries}


def test_an_operation_without_data_items_is_imported():
    controller = make_controller()

    report = import_file("11-embrace-subprocessors.md", controller, table=1)

    assert report.ok and operations(controller).count() == 3
    assert not DataItem.objects.filter(operation__service__controller=controller).exists()


def test_a_header_row_below_a_note_line_is_found(tmp_path):
    lines = ITRUS_TABLE.read_text(encoding="utf-8").splitlines()
    path = tmp_path / "with-note.tsv"
    path.write_text("\n".join(["说明\t本表列出第三方SDK", "", *lines]), encoding="utf-8")

    report = import_register(path, controller=make_controller(), file_name=path.name)

    assert report.ok, report.as_text()
    assert report.counts["operations"].created == 43


def test_a_numbering_column_is_ignored(tmp_path):
    lines = ITRUS_TABLE.read_text(encoding="utf-8").splitlines()
    path = tmp_path / "numbered.tsv"
    path.write_text("\n".join(f"{'序号' if n == 0 else n}\t{line}" for n, line in enumerate(lines)), "utf-8")

    report = import_register(path, controller=make_controller(), file_name=path.name)

    assert report.ok, report.as_text()
    assert report.counts["operations"].created == 43


def test_a_two_language_header_is_read_by_either_line():
    controller = make_controller()

    report = import_file("09-dcloud-map-sdk-en.html", controller)

    assert report.ok, report.as_text()
    assert Service.objects.get(controller=controller, name="百度开放平台").sdk_package


# --- 4. Headers -----------------------------------------------------------------------------------


def test_an_unknown_header_gets_a_proposal_from_its_column(tmp_path):
    lines = ITRUS_TABLE.read_text(encoding="utf-8").splitlines()
    path = tmp_path / "renamed.tsv"
    path.write_text("\n".join([lines[0].replace("服务主体", "签约单位"), *lines[1:]]), encoding="utf-8")

    report = import_register(path, controller=make_controller(), file_name=path.name)

    assert not report.ok
    assert report.header_proposals == {"签约单位": "recipient"}
    assert "Proposed from the columns" in report.as_text()


def test_a_column_of_places_is_proposed_as_where_processing_happens():
    report = import_file(
        "14-decisionrules-subprocessors.md", make_controller(), header_map={"Location": "country"}
    )

    assert report.header_proposals == {"DecisionRules Regions": "processing_locations"}


# --- 5. Recipients --------------------------------------------------------------------------------


def test_two_companies_in_one_cell_are_two_processors():
    controller = make_controller()

    import_file("13-stakater-subprocessors.md", controller, table=0)

    group = Processor.objects.get(kind=Processor.Kind.GROUP)
    assert sorted(member.name_en for member in group.members.all()) == ["Digital Realty", "OpenMetal"]


def test_recipient_kinds_listed_with_a_pause_mark_are_separate_recipients():
    controller = make_controller()

    import_file("03-qq-sharing.md", controller)

    assert Processor.objects.filter(name_zh="第三方广告监测服务商").exists()
    assert Processor.objects.filter(name_zh="广告主和/或其委托的代理商").exists()


@pytest.mark.parametrize("name", sorted(name for name, entry in LABELS.items() if "recipient_role" in entry))
def test_a_kind_of_recipient_column_is_each_operations_recipient_role(name):
    controller = make_controller()

    reports = import_every_table(name, controller)

    assert all(report.ok for report in reports)
    roles = set(operations(controller).exclude(recipient_role="").values_list("recipient_role", flat=True))
    assert roles == set(LABELS[name]["recipient_role"])


def test_a_kind_column_without_a_company_column_names_the_kind_as_the_recipient():
    controller = make_controller()

    import_file("19-tmall-global-partners.html", controller)

    assert sorted(operations(controller).values_list("processor__name_zh", "recipient_role")) == sorted(
        (kind, kind) for kind in LABELS["19-tmall-global-partners.html"]["recipient_role"]
    )


@pytest.mark.parametrize("name", sorted(name for name, entry in LABELS.items() if "brands" in entry))
def test_the_brands_a_table_names_are_recipients_of_kind_brand(name):
    controller = make_controller()

    import_every_table(name, controller)

    brands = Processor.objects.filter(kind=Processor.Kind.BRAND).values_list("name_zh", flat=True)
    assert set(brands) == set(LABELS[name]["brands"])


def test_and_others_after_a_single_name_is_a_note_not_part_of_the_name():
    controller = make_controller()

    import_file("20-xiangpini-sharing.md", controller, table=1)

    checking = operations(controller).get(recipient_role="实名认证服务提供方")
    assert (checking.processor.name_zh, checking.recipient_qualifier) == (
        "京东云计算有限公司",
        "等（以实际合作为准）",
    )
    couriers = operations(controller).get(recipient_role="快递物流服务提供商")
    assert couriers.recipient_qualifier == "等（以实际合作为准）"
    assert couriers.processor.members.count() == 3


def test_two_rows_for_one_recipient_that_differ_only_in_what_they_list_are_one_operation_with_both():
    controller = make_controller()

    report = import_file("19-tmall-global-partners.html", controller)

    merchant = operations(controller).get(processor__name_zh="店铺商家")
    assert [problem.row for problem in report.warnings if problem.code == "row_merged"] == [3]
    assert merchant.purpose_text == "交易履约；清关"
    assert {item.text for item in merchant.data_items.all()} >= {"收货地址", "收货人联系电话", "身份证"}


def test_a_kind_whose_first_part_borrows_the_last_parts_head_noun_is_one_recipient():
    controller = make_controller()

    import_file("19-tmall-global-partners.html", controller)

    assert Processor.objects.filter(name_zh="广告、分析合作伙伴", member_of=None).exists()
    assert not Processor.objects.filter(name_zh="广告").exists()


def test_a_brand_the_brand_list_knows_is_a_recipient_of_kind_brand_and_a_legal_name_is_not():
    controller = make_controller()

    import_file("08-dcloud-map-sdk.html", controller)
    import_file("02-xuexiqiangguo-sdk.md", make_controller(code="xuexi"))

    assert Processor.objects.get(name_zh="高德开放平台").kind == Processor.Kind.BRAND
    assert Processor.objects.get(name_zh="高德软件有限公司").kind == Processor.Kind.ORGANISATION
    # A short name the brand list does not know stays an organisation: nothing says it is a brand.
    import_file("15-zephyr-subprocessors.md", make_controller(code="zephyr"))
    assert Processor.objects.get(name_en="Auth0").kind == Processor.Kind.ORGANISATION
    assert Processor.objects.get(name_en="Amazon Web Services").kind == Processor.Kind.BRAND


def test_a_brand_and_the_company_behind_it_in_one_table_are_reported_as_possible_duplicates():
    controller = make_controller()
    import_file("20-xiangpini-sharing.md", controller, table=0)

    report = import_file("20-xiangpini-sharing.md", controller, table=1)

    pairs = {
        problem.value: problem.message
        for problem in report.warnings
        if problem.code == "processor_near_duplicate"
    }
    assert "支付宝（中国）网络技术有限公司" in pairs["支付宝"]
    assert "腾讯云计算（北京）有限责任公司" in pairs["腾讯云"]


def test_a_brand_is_reported_as_a_possible_duplicate_of_the_company_behind_it():
    import_file("02-xuexiqiangguo-sdk.md", make_controller(code="xuexi"))
    import_file("06-usongame-sdk.md", make_controller(code="usongame"))

    report = import_file("08-dcloud-map-sdk.html", make_controller(code="dcloud"))

    near = {
        problem.value: problem.message
        for problem in report.warnings
        if problem.code == "processor_near_duplicate"
    }
    assert set(near) == {"高德开放平台", "百度开放平台"}
    assert "高德软件有限公司" in near["高德开放平台"]
    assert "北京百度网讯科技有限公司" in near["百度开放平台"]


SHARED_REGISTER_FILES = (
    "01-jiamai-sdk.md",
    "10-retool-subprocessors.md",
    "11-embrace-subprocessors.md",
    "12-bento-subprocessors.md",
    "13-stakater-subprocessors.md",
    "16-sage-subprocessors.md",
    "17-range-subprocessors.md",
)


def test_every_labelled_same_company_pair_is_reported_once_the_tables_share_a_register():
    from bench.fidelity import known_pairs, reported_pairs

    for number, name in enumerate(SHARED_REGISTER_FILES):
        import_every_table(name, make_controller(code=f"shared-{number}"))

    reported = reported_pairs()
    expected = set().union(*(known_pairs(LABELS[name]) for name in SHARED_REGISTER_FILES))
    assert len(expected) == 9
    assert expected <= reported
    # Separate entities of one group, and different companies that look alike, are not reported.
    assert frozenset(("ovhus,llc", "ovhgroupesa")) not in reported
    assert not any({"intercom,inc..", "intercomr&dunlimitedcompany"} <= pair for pair in reported)


# --- 6. Countries and regions ---------------------------------------------------------------------


def test_the_european_union_is_stored_as_its_member_states():
    controller = make_controller()

    import_file("11-embrace-subprocessors.md", controller, table=1)

    operation = operations(controller).get(processor__name_en="SCALEWAY S.A.S.")
    assert operation.processing_locations == "European Union"
    assert tuple(country.code for country in operation.processing_countries) == EU_MEMBER_STATES


def test_an_annotation_in_brackets_after_a_company_is_not_part_of_its_name():
    controller = make_controller()

    report = import_file("25-coda-dpa-subprocessors.md", controller)

    assert report.ok and report.rows == LABELS["25-coda-dpa-subprocessors.md"]["rows"]
    posthog = operations(controller).get(processor__name_en="PostHog, Inc.")
    assert posthog.recipient_qualifier == "optional"
    assert posthog.purpose_text == "Product analytics (if enabled)"
    assert not Processor.objects.filter(name_en__icontains="optional").exists()


def test_an_example_in_brackets_after_a_kind_of_recipient_is_a_remark_not_a_member_list():
    controller = make_controller()

    import_file("25-coda-dpa-subprocessors.md", controller)

    email = operations(controller).get(processor__name_en="Email provider")
    assert email.processor.kind == Processor.Kind.ORGANISATION
    assert email.recipient_qualifier == "e.g., Controller-selected SMTP service"
    assert not Processor.objects.filter(name_en__in=["e.g.", "Controller-selected SMTP service"]).exists()


def test_a_cloud_providers_eu_regions_are_the_eu_and_varies_by_provider_is_no_place():
    controller = make_controller()

    report = import_file("25-coda-dpa-subprocessors.md", controller)

    vercel = operations(controller).get(processor__name_en="Vercel, Inc.")
    assert vercel.processing_locations == "USA / EU regions"
    assert {country.code for country in vercel.processing_countries} == {*EU_MEMBER_STATES, "US"}
    email = operations(controller).get(processor__name_en="Email provider")
    assert email.processing_locations == "Varies by provider" and not email.processing_countries
    assert not any(problem.code == "location_unknown" for problem in report.warnings)
    assert [problem.value for problem in report.warnings if problem.code == "location_vague"] == [
        "Varies by provider"
    ]


def test_varies_is_kept_as_text_and_flagged_never_a_country():
    controller = make_controller()

    report = import_file("12-bento-subprocessors.md", controller)

    redis = operations(controller).get(processor__name_en="Redis")
    assert redis.processing_locations == "Varies" and not redis.processing_countries
    assert [problem.value for problem in report.warnings if problem.code == "location_vague"] == ["Varies"]


def test_global_beside_countries_is_flagged_and_the_countries_kept():
    controller = make_controller()

    report = import_mapped("14-decisionrules-subprocessors.md", controller)

    mongo = operations(controller).get(processor__name_en="MongoDB Limited")
    assert {"US", "DE", "AU"} <= {country.code for country in mongo.processing_countries}
    assert mongo.processor.country.code == "IE"
    assert any(problem.code == "location_vague" for problem in report.warnings)


def test_a_chinese_country_column_of_the_recipient_is_where_its_processing_happens():
    controller = make_controller()

    report = import_mapped("23-xiang-cross-border.html", controller)

    assert report.ok
    google = operations(controller).get(processor__name_en="Google LLC")
    assert google.processing_locations == "美国"
    assert [country.code for country in google.processing_countries] == ["US"]
    assert google.cross_border
    spotify = operations(controller).get(processor__name_en="Spotify AB")
    assert spotify.processing_locations == "瑞典 / 欧盟"
    assert tuple(country.code for country in spotify.processing_countries) == EU_MEMBER_STATES
    assert not any(problem.code.startswith("location") for problem in report.warnings)


# --- 7. An empty register -------------------------------------------------------------------------


def test_the_command_creates_the_controller_it_is_asked_to():
    out = StringIO()

    call_command(
        "import_register",
        str(ITRUS_TABLE),
        "--controller",
        "itrus",
        "--create-controller",
        "天威诚信",
        stdout=out,
    )

    controller = Controller.objects.get(code="itrus")
    assert controller.name_zh == "天威诚信"
    assert operations(controller).count() == 43


def test_without_a_controller_the_command_says_how_to_create_one():
    with pytest.raises(CommandError, match="--create-controller"):
        call_command("import_register", str(ITRUS_TABLE), "--lang", "en", stdout=StringIO())


def test_the_only_controller_is_used_without_being_named():
    controller = make_controller()

    call_command("import_register", str(REAL / "15-zephyr-subprocessors.md"), stdout=StringIO())

    assert operations(controller).count() == 6


# --- 8. Re-imports never duplicate ----------------------------------------------------------------


def test_an_undated_reimport_of_a_dated_table_creates_nothing_and_asks_about_the_date():
    controller = make_controller()
    dated = import_register(
        ITRUS_TABLE,
        controller=controller,
        file_name=ITRUS_TABLE.name,
        effective_from=datetime.date(2024, 1, 1),
    )
    assert dated.counts["operations"].created == 43

    again = import_register(ITRUS_TABLE, controller=controller, file_name=ITRUS_TABLE.name)

    assert again.ok
    assert again.counts["operations"].created == 0
    assert again.matched_existing == 43 and again.matched_other_date == 43
    assert [problem.code for problem in again.warnings if problem.code == "dates_differ"] == ["dates_differ"]
    assert operations(controller).count() == 43


# --- 9. Language ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("lang", "phrase"), [("en", "rows, imported"), ("zh", "已导入")])
def test_the_command_speaks_the_language_asked_for(lang, phrase):
    make_controller()
    out = StringIO()

    call_command("import_register", str(ITRUS_TABLE), "--lang", lang, stdout=out)

    assert phrase in out.getvalue()


# --- 10. Labels: what a reader reads off each table -------------------------------------------------


ALL_LABELS = (*CATEGORY_LABELS, "processing_outside_china", "processing_in_eu")


def label_answers(name: str) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(found, expected) for every label of a corpus file, names compared by their match keys."""
    controller = make_controller()
    import_every_table(name, controller)
    found = answers(controller)
    return (
        {label: {normalize_key(recipient) for recipient in found[label]} for label in ALL_LABELS},
        {
            label: {normalize_key(recipient) for recipient in LABELS[name].get(label, [])}
            for label in ALL_LABELS
        },
    )


@pytest.mark.parametrize("name", sorted(LABELS))
def test_the_register_answers_each_label_as_a_reader_does(name):
    found, expected = label_answers(name)

    for label in ALL_LABELS:
        assert found[label] == expected[label], label


# --- Files 23 and 24: cells that pack several items, and company / product names ---------------------


def items_of(operation: Operation) -> list[tuple[str, str | None]]:
    return list(operation.data_items.order_by("position", "pk").values_list("text", "category__code"))


def test_a_spaced_plus_between_items_is_a_list_separator():
    controller = make_controller()

    report = import_mapped("23-xiang-cross-border.html", controller)

    assert report.ok
    assert items_of(operations(controller).get(processor__name_en="Google LLC")) == [
        ("FCM token", "device.push_token"),
        ("通知文案", "comms.message_content"),
    ]
    apple = operations(controller).get(processor__name_en="Apple Inc.", purpose_text="iOS 推送投递")
    assert items_of(apple) == [
        ("APNs device token", "device.push_token"),
        ("通知文案(标题、正文、deeplink)", "comms.message_content"),
    ]


def test_a_companys_product_beside_the_company_is_reported_as_a_possible_duplicate():
    controller = make_controller()
    header_map = LABELS["23-xiang-cross-border.html"]["header_map"]

    report = import_file("23-xiang-cross-border.html", controller, header_map=header_map)

    # Each warning names the two names it found alike, in quotes.
    pairs = {
        frozenset(re.findall(r"“([^”]+)”", problem.message))
        for problem in report.warnings
        if problem.code == "processor_near_duplicate"
    }
    assert frozenset(("Apple Inc.", "Apple Music")) in pairs
    assert frozenset(("Apple Inc. / Apple Music Catalog API", "Apple Music")) in pairs
    assert not any("Spotify AB" in pair or "Google LLC" in pair for pair in pairs)


def test_a_purpose_line_in_an_item_cell_is_the_rows_purpose_not_an_item():
    controller = make_controller()

    import_every_table("01-jiamai-sdk.md", controller)

    oppo = operations(controller).get(service__name="OPPO通道SDK")
    assert oppo.purpose_text == "提供OPPO终端设备的消息推送服务"  # its purpose cell is empty
    assert ("应用基本信息", "device.app_info") in items_of(oppo)
    assert not any("使用目的" in text or "收集个人信息类型" in text for text, _code in items_of(oppo))
    # a row with a purpose of its own keeps it
    huawei = operations(controller).get(service__name="华为通道SDK")
    assert huawei.purpose_text == "通过厂商消息通道，在不同厂商的终端设备上完成消息推送"
    assert not any(text.startswith("使用目的") for text, _code in items_of(huawei))


def test_what_the_items_are_used_for_after_the_list_is_no_item():
    controller = make_controller()

    import_file("06-usongame-sdk.md", controller)

    ads = operations(controller).get(service__name="优量汇SDK")
    texts = [text for text, _code in items_of(ads)]
    assert "软件应用安装列表" in texts
    assert not any(text.startswith("用于") or text in ("提高用户体验", "反作弊") for text in texts)
    assert ads.purpose_text == "用于展示优量汇平台提供广告信息"
