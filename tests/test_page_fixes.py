"""Pages that now hold their content (issue 14): readable import counts, collapsed history, country
names, the English table's Chinese-only names marked, countries in the files, the marks option offered,
and the admin's operations list and country widget."""

import csv
import io

import openpyxl
import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import translation

from processors import services
from processors.disclosure.rows import CHINESE_ONLY_MARK, rows_from_operations
from processors.models import ImportRecord, Operation
from processors.views import PROCESSOR_HISTORY_SHOWN, import_counts_text
from tests.builders import make_controller, make_member, make_operation, make_processor, make_service

pytestmark = pytest.mark.django_db


def body(response) -> bytes:
    """A response's bytes, streamed (a download) or not."""
    return b"".join(response.streaming_content) if response.streaming else response.content


READER = ("view_operation", "view_processor", "view_datacategory", "view_controller", "view_importrecord")


@pytest.fixture
def register():
    controller = make_controller(code="acme", name_zh="某某科技有限公司", name_en="Acme Ltd")
    service = make_service(controller, name="实名认证")
    abroad = make_processor(name_zh="某外国公司", name_en="Example CA Inc", country="US")
    domestic = make_processor(name_zh="某核验有限公司")
    return {
        "controller": controller,
        "abroad": make_operation(
            service=service,
            processor=abroad,
            data_items=["邮箱"],
            cross_border=True,
            destination_countries=["US", "JP"],
        ),
        "domestic": make_operation(service=service, processor=domestic, data_items=["姓名", "神秘字段"]),
    }


@pytest.fixture
def reader(django_user_model, register):
    user = django_user_model.objects.create_user("reader", password="reader-password-for-tests")
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="processors", codename__in=READER)
    )
    make_member(user)
    return user


# --- Dashboard ------------------------------------------------------------------------------------


def test_recent_imports_read_as_counts_not_python_dicts(client, reader, register):
    ImportRecord.objects.create(
        file_name="table.tsv",
        sha256="0" * 64,
        controller=register["controller"],
        result="committed",
        counts={
            "rows": 43,
            "processors": {"created": 2, "changed": 28, "unchanged": 0},
            "operations": {"created": 43, "changed": 0, "unchanged": 0},
        },
    )
    client.force_login(reader)

    with translation.override("en"):
        html = client.get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert "{'" not in html and "{&#x27;" not in html
    assert "43 rows" in html
    assert "processors: 2 created, 28 changed" in html


def test_import_counts_leave_out_what_did_not_happen():
    with translation.override("en"):
        text = import_counts_text({"rows": 3, "services": {"created": 0, "changed": 0, "unchanged": 0}})

    assert text == "3 rows"


# --- A processor's history ------------------------------------------------------------------------


def test_a_processors_history_is_one_folded_entry_per_change_with_show_all(client, reader, register):
    processor = register["domestic"].processor
    for number in range(PROCESSOR_HISTORY_SHOWN + 3):
        services.processor_update(processor=processor, contact_phone=f"010-1234567{number}")
    client.force_login(reader)

    html = client.get(reverse("processors:processor", args=[processor.pk])).content.decode()

    assert html.count('<li class="history-entry">') >= PROCESSOR_HISTORY_SHOWN + 3
    assert 'class="history-more"' in html  # the older ones behind "show all"
    assert '<table class="data-table history-table">' not in html


# --- Explorer -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("language", "name"), [("en", "United States"), ("zh-hans", "美国")])
def test_the_explorer_names_countries_in_the_users_language(client, reader, register, language, name):
    client.force_login(reader)

    html = client.get(reverse("processors:explorer"), HTTP_ACCEPT_LANGUAGE=language).content.decode()

    assert name in html
    assert ">US<" not in html and "US JP" not in html


def test_the_explorer_offers_the_publication_marks_export(client, reader, register):
    client.force_login(reader)

    html = client.get(reverse("processors:explorer")).content.decode()

    assert "marks=1" in html


def test_the_explorer_export_with_marks_names_the_countries_after_the_recipient(client, reader, register):
    client.force_login(reader)

    response = client.get(
        reverse("processors:explorer-export"), {"format": "csv", "marks": "1", "lang": "en"}
    )

    rows = list(csv.reader(io.StringIO(body(response).decode("utf-8-sig"))))
    abroad = next(row for row in rows if row[1].startswith("Example CA Inc"))
    assert "[cross-border: Japan; United States of America]" in abroad[1]


# --- The English disclosure -----------------------------------------------------------------------


def test_the_english_table_marks_what_it_can_only_name_in_chinese(register):
    rows = list(rows_from_operations(Operation.objects.all(), lang="en"))
    by_recipient = {row.recipient_name: row for row in rows}

    assert "Example CA Inc" in by_recipient  # an English name is used as is
    assert f"某核验有限公司{CHINESE_ONLY_MARK}" in by_recipient
    assert rows[0].service == f"实名认证{CHINESE_ONLY_MARK}"
    assert (
        by_recipient[f"某核验有限公司{CHINESE_ONLY_MARK}"].data_items_text()
        == f"Name; 神秘字段{CHINESE_ONLY_MARK}"
    )


def test_the_chinese_table_carries_no_mark(register):
    rows = list(rows_from_operations(Operation.objects.all(), lang="zh"))

    assert all(CHINESE_ONLY_MARK not in " ".join(row.texts()) for row in rows)


def test_the_english_disclosure_page_explains_the_mark(client, reader, register):
    client.force_login(reader)

    html = client.get(reverse("processors:disclosure", args=["acme"]), {"lang": "en"}).content.decode()

    assert f"某核验有限公司{CHINESE_ONLY_MARK}" in html
    assert 'class="chinese-only-legend"' in html


def test_the_disclosure_page_offers_the_publication_marks_download(client, reader, register):
    client.force_login(reader)

    html = client.get(reverse("processors:disclosure", args=["acme"])).content.decode()

    assert "marks=1" in html


# --- Countries in the files -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lang", "countries"), [("zh", "日本、美国"), ("en", "Japan; United States of America")]
)
def test_the_xlsx_download_has_the_countries_of_abroad_recipients(client, reader, register, lang, countries):
    client.force_login(reader)

    response = client.get(
        reverse("processors:disclosure-download", args=["acme"]), {"format": "xlsx", "lang": lang}
    )

    sheet = openpyxl.load_workbook(io.BytesIO(body(response))).worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    assert len(rows[0]) == 6
    values = {row[5] for row in rows[1:]}
    assert countries in values
    assert None in values  # the domestic row has no country


def test_the_csv_download_has_the_countries_column(client, reader, register):
    client.force_login(reader)

    response = client.get(reverse("processors:disclosure-download", args=["acme"]), {"format": "csv"})

    rows = list(csv.reader(io.StringIO(body(response).decode("utf-8-sig"))))
    assert rows[0][5] == "境外接收方所在国家或地区"
    assert "日本、美国" in {row[5] for row in rows[1:]}


def test_the_marks_option_reaches_the_download(client, reader, register):
    client.force_login(reader)
    url = reverse("processors:disclosure-download", args=["acme"])

    plain = body(client.get(url, {"format": "csv"})).decode("utf-8-sig")
    marked = body(client.get(url, {"format": "csv", "marks": "1"})).decode("utf-8-sig")

    assert "［境外：日本、美国］" in marked and "［境外" not in plain


# --- Admin ----------------------------------------------------------------------------------------


@pytest.fixture
def staff(admin_client):
    return admin_client


def test_the_admin_operations_list_shows_only_what_fits(staff, register):
    html = staff.get(reverse("admin:processors_operation_changelist")).content.decode()

    assert "column-purposes_list" not in html and "column-relationship_name" not in html
    assert "column-data_categories" in html


def test_the_admin_category_filter_is_folded_with_a_search_box(staff, register):
    html = staff.get(reverse("admin:processors_operation_changelist")).content.decode()

    # Categories and purposes; the processor filter shows only when a link chose a processor.
    assert html.count('class="compact-filter"') >= 2
    assert "data-filter-search" in html
    assert "processors/admin/admin_filters.js" in html


def test_the_admin_change_form_loads_the_country_search(staff, register):
    html = staff.get(
        reverse("admin:processors_operation_change", args=[register["abroad"].pk])
    ).content.decode()

    assert "processors/admin/admin_filters.js" in html
    assert 'id="searchable-select-words"' in html
    assert 'name="destination_countries"' in html
