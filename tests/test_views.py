"""The browser pages: who may see what, what each page shows, the import flow, and constant query counts."""

import csv
import datetime
import hashlib
import io
import re
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from bench.api_bench import generate_register
from processors import services
from processors.middleware import parse_policy
from processors.models import Controller, DataCategory, ImportRecord, Operation, Processor, PublicVersions
from processors.spreadsheets import uploads
from processors.views import MatrixView
from tests.builders import make_controller, make_member, make_operation, make_processor, make_service

pytestmark = pytest.mark.django_db

DAY = datetime.date(2024, 1, 1)
TSV_HEADER = "服务/功能名称\t服务主体\t处理个人信息范围\t处理个人信息目的\t处理个人信息方式\n"


@pytest.fixture(autouse=True)
def upload_dir(settings, tmp_path):
    settings.REGISTER_UPLOAD_DIR = str(tmp_path / "uploads")
    return Path(settings.REGISTER_UPLOAD_DIR)


@pytest.fixture
def register():
    """A small register: a public controller, an SMS vendor, an ID checker, and a foreign group."""
    controller = make_controller(
        code="acme", name_zh="某某科技有限公司", name_en="Acme Ltd", disclosure_public=True
    )
    sms = make_service(controller, name="短信服务")
    identity = make_service(controller, name="实名认证")
    vendor = make_processor(name_zh="某短信有限公司", contact_phone="010-12345678", aliases=["某短信"])
    checker = make_processor(name_zh="某核验有限公司", uscc="91110108MA01C8XY3G")
    group = make_processor(name_en="CA group", kind=Processor.Kind.GROUP)
    member = make_processor(name_en="Example CA Inc", country="US", member_of=group)
    return {
        "controller": controller,
        "vendor": vendor,
        "checker": checker,
        "group": group,
        "member": member,
        "sms": make_operation(
            service=sms, processor=vendor, data_items=["手机号"], purposes=["sms_otp"], actions=["use"]
        ),
        "identity": make_operation(
            service=identity,
            processor=checker,
            data_items=["姓名", "身份证号"],
            purposes=["identity_verification"],
            purpose_text="实名认证",
        ),
        "foreign": make_operation(
            service=identity,
            processor=group,
            data_items=["邮箱", "某种未知信息"],
            purposes=["certificate_issuance"],
            cross_border=True,
            destination_countries=["US"],
        ),
    }


def user_with(django_user_model, *codenames: str, username: str = "reader"):
    user = django_user_model.objects.create_user(username, password="reader-password-for-tests")
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="processors", codename__in=codenames)
    )
    make_member(user)  # permissions say what kind of thing; membership of the controllers, where
    return user


def text(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def squash(html: str) -> str:
    """The page's text without tags and runs of whitespace, to assert on what a reader sees."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


# --- Access -------------------------------------------------------------------------------------


def test_an_anonymous_visitor_sees_the_landing_with_public_tables_and_the_login(client, register):
    make_controller(code="secret", name_zh="不公开公司")

    page = text(client.get("/"))

    assert reverse("processors:disclosure", args=["acme"]) in page
    assert "/disclosure/secret/" not in page
    assert reverse("accounts:login") in page


@pytest.mark.parametrize("url", ["/explorer/", "/matrix/", "/categories/basic/", "/import/"])
def test_anonymous_visitors_are_sent_to_the_login_page(client, register, url):
    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


@pytest.mark.parametrize("url", ["/", "/explorer/", "/matrix/", "/categories/basic/"])
def test_a_signed_in_user_without_the_view_permission_is_refused(client, django_user_model, register, url):
    client.force_login(user_with(django_user_model))

    assert client.get(url).status_code == 403


def test_a_reader_with_view_permissions_explores_but_cannot_import(client, django_user_model, register):
    client.force_login(user_with(django_user_model, "view_operation", "view_processor", "view_datacategory"))

    assert client.get("/explorer/").status_code == 200
    assert client.get(f"/processors/{register['vendor'].pk}/").status_code == 200
    assert client.get("/import/").status_code == 403


def test_a_public_disclosure_page_needs_no_login(client, register):
    assert client.get("/disclosure/acme/").status_code == 200


def test_a_disclosure_page_that_is_not_public_needs_a_login(client, register):
    Controller.objects.filter(code="acme").update(disclosure_public=False)

    response = client.get("/disclosure/acme/embed/")

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


def test_an_unknown_controller_has_no_disclosure_page(admin_client):
    assert admin_client.get("/disclosure/nobody/").status_code == 404


def test_an_unknown_controller_looks_like_a_private_one_to_anonymous_visitors(client):
    # Issue 12: a 404 would tell an unknown code from a private controller's (which asks for a login).
    response = client.get("/disclosure/nobody/")

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


# --- Disclosure ---------------------------------------------------------------------------------


def test_the_chinese_table_has_the_published_headers_and_item_texts(client, register):
    page = text(client.get("/disclosure/acme/?lang=zh"))

    for header in ("服务/功能名称", "服务主体", "处理个人信息范围", "处理个人信息目的", "处理个人信息方式"):
        assert f'<th scope="col">{header}</th>' in page
    assert "身份证号" in page
    assert "某某科技有限公司" in page


def test_the_english_table_shows_category_and_purpose_names_in_english(client, register):
    page = squash(text(client.get("/disclosure/acme/?lang=en")))

    assert "Service/feature Recipient Personal information processed Purpose Processing method" in page
    assert "Resident ID number" in page
    assert "Identity verification" in page
    assert "Acme Ltd" in page


def test_sensitive_items_are_bold_and_underlined(client, register):
    page = text(client.get("/disclosure/acme/?lang=zh"))

    assert '<strong class="sensitive">身份证号</strong>' in page
    assert '<strong class="sensitive">姓名</strong>' not in page


def test_rows_are_grouped_by_service_with_one_header_cell_per_group(client, register):
    page = text(client.get("/disclosure/acme/?lang=zh"))

    assert page.count('class="service-group"') == 2
    assert '<th scope="rowgroup" rowspan="2" class="service">实名认证</th>' in page


def test_the_recipients_phone_and_the_foreign_members_country_are_shown(client, register):
    page = text(client.get("/disclosure/acme/?lang=en"))

    assert "010-12345678" in page
    assert re.search(r"Example CA Inc\s*<span class=\"abroad-tag\">United States of America</span>", page)


def test_the_table_says_when_the_register_last_changed(client, register):
    Operation.objects.filter(pk=register["sms"].pk).update(
        updated_at=timezone.now() + datetime.timedelta(days=3)
    )

    page = text(client.get("/disclosure/acme/"))

    assert (timezone.localdate() + datetime.timedelta(days=3)).isoformat() in page


def test_retired_operations_are_not_in_the_published_table(client, register):
    Operation.objects.filter(pk=register["sms"].pk).update(status="retired")

    page = text(client.get("/disclosure/acme/?lang=zh"))

    assert "某短信有限公司" not in page


def test_the_download_is_the_same_table_as_a_csv_in_the_chosen_language(client, register):
    response = client.get("/disclosure/acme/download/?format=csv&lang=en")

    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="acme-disclosure-en.csv"'
    rows = list(csv.reader(io.StringIO(response.getvalue().decode("utf-8-sig"))))
    assert rows[0] == [
        "Service/feature",
        "Recipient",
        "Personal information processed",
        "Purpose",
        "Processing method",
        "Countries/regions abroad",
    ]
    assert len(rows) == 1 + 3


def test_the_download_as_xlsx_is_a_workbook(client, register):
    response = client.get("/disclosure/acme/download/?format=xlsx")

    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    assert response.streaming and response.getvalue()[:2] == b"PK"


def test_an_unknown_download_format_is_not_found(client, register):
    assert client.get("/disclosure/acme/download/?format=pdf").status_code == 404


def test_a_public_embed_may_be_framed_by_any_site_by_default(client, register):
    response = client.get("/disclosure/acme/embed/")

    assert "X-Frame-Options" not in response
    assert parse_policy(response["Content-Security-Policy"])["frame-ancestors"] == ["*"]
    assert 'class="site-header"' not in text(response)


def test_the_embed_may_be_limited_to_the_listed_sites(client, register, settings):
    settings.REGISTER_EMBED_FRAME_ANCESTORS = ["https://www.acme.example"]

    response = client.get("/disclosure/acme/embed/")

    assert parse_policy(response["Content-Security-Policy"])["frame-ancestors"] == [
        "https://www.acme.example"
    ]


def test_an_embed_that_is_not_public_may_only_be_framed_by_this_site(admin_client, register):
    Controller.objects.filter(code="acme").update(disclosure_public=False)

    response = admin_client.get("/disclosure/acme/embed/")

    assert response["X-Frame-Options"] == "SAMEORIGIN"
    assert parse_policy(response["Content-Security-Policy"])["frame-ancestors"] == ["'self'"]


def test_other_pages_may_not_be_framed(client, register):
    assert client.get("/disclosure/acme/")["X-Frame-Options"] == "DENY"


def test_the_language_switch_forgets_the_tables_language_parameter(client, register):
    page = text(client.get("/disclosure/acme/?lang=en"))

    assert '<input type="hidden" name="next" value="/disclosure/acme/">' in page


# --- Explorer -----------------------------------------------------------------------------------


def test_the_explorer_lists_every_operation_with_a_count(admin_client, register):
    page = squash(text(admin_client.get("/explorer/", HTTP_ACCEPT_LANGUAGE="en")))

    assert "3 operations" in page


def test_the_explorer_filters_by_a_category_alias_with_its_descendants(admin_client, register):
    response = admin_client.get("/explorer/", {"category": "identity"})

    assert [operation.pk for operation in response.context["object_list"]] == [register["identity"].pk]


def test_the_explorer_filters_by_cross_border_and_sensitive_data(admin_client, register):
    assert list(admin_client.get("/explorer/?cross_border=true").context["object_list"]) == [
        register["foreign"]
    ]
    assert list(admin_client.get("/explorer/?sensitive=true").context["object_list"]) == [
        register["identity"]
    ]


def test_a_member_finds_its_groups_operations(admin_client, register):
    response = admin_client.get("/explorer/", {"processor": register["member"].pk})

    assert list(response.context["object_list"]) == [register["foreign"]]


def test_an_unknown_category_shows_the_error_with_a_suggestion_instead_of_an_empty_table(
    admin_client, register
):
    page = text(admin_client.get("/explorer/", {"category": "身分证号"}, HTTP_ACCEPT_LANGUAGE="en"))

    assert "Unknown data category &#x27;身分证号&#x27;. Did you mean 身份证号" in page
    assert 'role="alert"' in page
    assert 'class="data-table operations"' not in page


def test_the_explorer_sorts_by_the_filtersets_ordering(admin_client, register):
    response = admin_client.get("/explorer/?ordering=-processor")

    keys = [operation.processor.name_key for operation in response.context["object_list"]]
    assert keys == sorted(keys, reverse=True)
    assert 'aria-sort="descending"' in text(response)


def test_page_links_keep_the_filters(admin_client):
    generate_register(60)

    page = text(admin_client.get("/explorer/?status=active&ordering=processor"))

    assert 'href="?status=active&amp;ordering=processor&amp;page=2"' in page


def test_the_export_links_carry_the_current_filters(admin_client, register):
    page = text(admin_client.get("/explorer/?cross_border=true&ordering=processor"))

    assert (
        f"{reverse('processors:explorer-export')}?cross_border=true&amp;ordering=processor&amp;format=csv"
        in page
    )


def test_the_export_has_the_filtered_rows(admin_client, register):
    response = admin_client.get("/explorer/export/?cross_border=true&format=csv&lang=zh")

    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert len(rows) == 2
    assert rows[1][1].startswith("CA group")


def test_an_export_with_an_invalid_filter_goes_back_to_the_explorer_with_the_error(admin_client, register):
    response = admin_client.get("/explorer/export/?category=nonsense-category&format=csv", follow=True)

    assert response.redirect_chain[0][0] == "/explorer/?category=nonsense-category"
    assert "nonsense-category" in text(response)


# --- Processor, category, matrix, dashboard -------------------------------------------------------


def test_the_processor_page_shows_identity_contacts_and_aliases(admin_client, register):
    page = text(admin_client.get(f"/processors/{register['vendor'].pk}/"))

    assert "某短信有限公司" in page
    assert "010-12345678" in page
    assert "某短信" in page


def test_the_processor_page_groups_what_it_receives_by_purpose(admin_client, register):
    response = admin_client.get(f"/processors/{register['checker'].pk}/")

    receipts = response.context["receipts"]
    assert [receipt.purpose.code for receipt in receipts] == ["identity_verification"]
    assert sorted(category.code for category in receipts[0].categories.values()) == [
        "basic.name",
        "identity.id_card_number",
    ]


def test_a_member_page_includes_what_its_group_receives(admin_client, register):
    response = admin_client.get(f"/processors/{register['member'].pk}/")

    assert [operation.pk for operation in response.context["operations"]] == [register["foreign"].pk]
    assert "CA group" in text(response)


def test_a_group_page_lists_its_members_with_their_countries(admin_client, register):
    page = squash(text(admin_client.get(f"/processors/{register['group'].pk}/")))

    assert "Example CA Inc" in page


def test_an_unknown_processor_is_not_found(admin_client):
    assert admin_client.get("/processors/999999/").status_code == 404


def test_the_category_page_lists_recipients_of_its_descendants(admin_client, register):
    response = admin_client.get("/categories/identity/")

    assert [recipient.processor for recipient in response.context["recipients"]] == [register["checker"]]
    assert "identity.id_card_number" in {child.code for child in response.context["children"]}


def test_the_category_page_shows_its_place_in_the_tree_and_its_sensitivity(admin_client, register):
    response = admin_client.get("/categories/identity.id_card_number/")

    assert [category.code for category in response.context["lineage"]] == ["identity"]
    page = text(response)
    assert "GB/T 35273-2020" in page and "GB/T 45574-2025" in page


def test_a_category_name_or_alias_leads_to_its_page(admin_client, register):
    response = admin_client.get("/categories/手机号/")

    assert response["Location"] == "/categories/basic.phone_number/"


def test_the_category_search_goes_straight_to_the_category(admin_client, register):
    assert admin_client.get("/categories/?q=身份证号")["Location"] == "/categories/identity.id_card_number/"


def test_the_category_search_suggests_close_names_when_nothing_matches(admin_client, register):
    page = text(admin_client.get("/categories/?q=身分证号"))

    assert 'role="alert"' in page
    assert "?q=" in page


def test_the_matrix_opens_with_one_column_per_category_group(admin_client, register):
    grid = admin_client.get("/matrix/").context["grid"]

    groups = DataCategory.objects.filter(parent__isnull=True).order_by("position", "code")
    assert [column["code"] for column in grid["columns"]] == [group.code for group in groups]
    vendor = next(row for row in grid["rows"] if row["id"] == register["vendor"].pk)
    assert {column["code"]: count for column, count in vendor["cells"] if count} == {"basic": 1}


def test_a_matrix_group_drills_into_its_categories_that_occur(admin_client, register):
    response = admin_client.get("/matrix/?group=basic")
    grid = response.context["grid"]

    codes = [column["code"] for column in grid["columns"]]
    assert codes == sorted(codes)
    assert set(codes) == {"basic.email", "basic.name", "basic.phone_number"}
    page = text(response)
    assert '<a href="/categories/basic.email/"' in page
    assert f'<a href="/processors/{register["vendor"].pk}/"' in page


def test_the_matrix_pages_its_recipients(admin_client, register):
    for number in range(MatrixView.paginate_by):
        make_operation(processor=make_processor(name_zh=f"分页接收方{number:03d}"), data_items=["手机号"])

    first = admin_client.get("/matrix/").context
    second = admin_client.get("/matrix/?page=2").context

    assert len(first["grid"]["rows"]) == MatrixView.paginate_by
    assert first["page_obj"].paginator.count == MatrixView.paginate_by + len(second["grid"]["rows"])
    assert not {row["id"] for row in first["grid"]["rows"]} & {row["id"] for row in second["grid"]["rows"]}


def test_an_unknown_matrix_group_is_a_404(admin_client, register):
    assert admin_client.get("/matrix/?group=basic.name").status_code == 404


def test_matrix_cells_link_to_the_explorer_filtered_by_processor_and_category(admin_client, register):
    page = text(admin_client.get("/matrix/?sensitive=true&group=identity"))

    checker = register["checker"].pk
    assert f"/explorer/?sensitive=true&amp;processor={checker}&amp;category=identity.id_card_number" in page


def test_the_matrix_applies_the_operation_filters(admin_client, register):
    grid = admin_client.get("/matrix/?cross_border=true").context["grid"]

    assert [row["id"] for row in grid["rows"]] == [register["group"].pk]


def test_the_matrix_shows_filter_errors(admin_client, register):
    response = admin_client.get("/matrix/?category=nonsense-category")

    assert response.context["grid"] is None
    assert 'role="alert"' in text(response)


def test_the_dashboard_counts_and_links_to_the_flows_to_watch(admin_client, register):
    response = admin_client.get("/")

    summary = response.context["summary"]
    counted = {name: summary[name] for name in ("operations", "sensitive", "cross_border", "unmapped")}
    assert counted == {"operations": 3, "sensitive": 1, "cross_border": 1, "unmapped": 1}
    page = text(response)
    assert "/explorer/?sensitive=true" in page
    assert "/explorer/?cross_border=true" in page
    assert f"{reverse('admin:processors_dataitem_changelist')}?unmapped=true" in page


# --- Import -------------------------------------------------------------------------------------


def importer(client, django_user_model):
    client.force_login(user_with(django_user_model, "add_operation", "view_operation", username="importer"))
    return client


def upload(client, text: str, controller: str = "acme"):
    return client.post("/import/", {"controller": controller, "text": text})


def named_file(data: bytes, name: str) -> io.BytesIO:
    file = io.BytesIO(data)
    file.name = name
    return file


def test_an_upload_leads_to_a_preview_that_saves_nothing(client, django_user_model, register):
    importer(client, django_user_model)

    response = upload(
        client, TSV_HEADER + "客服\t某客服有限公司 400-000-0000\t姓名、手机号\t客户服务\t使用\n"
    )
    preview = client.get(response["Location"])

    assert preview.status_code == 200
    counts = preview.context["report"].counts
    assert (counts["operations"].created, counts["processors"].created) == (1, 1)
    assert not Processor.objects.filter(name_zh="某客服有限公司").exists()


def test_confirming_the_preview_imports_the_rows(client, django_user_model, register):
    importer(client, django_user_model)
    location = upload(client, TSV_HEADER + "客服\t某客服有限公司\t姓名\t客户服务\t使用\n")["Location"]
    token = location.rstrip("/").rsplit("/", 1)[1]

    response = client.post(f"/import/{token}/confirm/", follow=True)

    assert response.redirect_chain[-1][0] == "/import/done/"
    assert Operation.objects.filter(processor__name_zh="某客服有限公司").count() == 1
    assert not list(uploads.upload_dir().glob(f"{token}.*"))


def test_problems_are_located_by_row_and_column_and_block_the_import(client, django_user_model, register):
    importer(client, django_user_model)

    location = upload(client, TSV_HEADER + "\t某客服有限公司\t姓名\t客户服务\t使用\n")["Location"]
    response = client.get(location, HTTP_ACCEPT_LANGUAGE="en")

    assert not response.context["report"].ok
    assert "row 2, column A (服务/功能名称)" in text(response)
    assert "/confirm/" not in text(response)


def test_unknown_headers_are_mapped_and_the_preview_runs_again(client, django_user_model, register):
    importer(client, django_user_model)
    location = upload(client, "服务\t接收方\t个人信息\t备注栏\n客服\t某客服有限公司\t姓名\t随便\n")[
        "Location"
    ]
    preview = client.get(location)
    assert preview.context["preview"].unknown_headers == ["备注栏"]

    client.post(location, {"header_0": "ignore"})
    again = client.get(location)

    assert again.context["report"].ok
    assert again.context["upload"].header_map == {"备注栏": "ignore"}


def test_a_file_upload_works_like_pasted_text(client, django_user_model, register):
    importer(client, django_user_model)
    data = (TSV_HEADER + "客服\t某客服有限公司\t姓名\t客户服务\t使用\n").encode("utf-8")

    response = client.post("/import/", {"controller": "acme", "file": named_file(data, "table.tsv")})

    assert client.get(response["Location"]).context["report"].rows == 1


def test_the_upload_script_gets_the_preview_address_as_json(client, django_user_model, register):
    importer(client, django_user_model)

    response = client.post(
        "/import/",
        {"controller": "acme", "text": TSV_HEADER + "客服\t某\t姓名\t\t\n"},
        HTTP_ACCEPT="application/json",
    )

    assert response.json()["next"].startswith("/import/")


def test_an_upload_needs_exactly_one_of_file_and_text(client, django_user_model, register):
    importer(client, django_user_model)

    response = client.post("/import/", {"controller": "acme"})

    assert response.status_code == 400
    assert not list(uploads.upload_dir().glob("*"))


def test_someone_elses_upload_cannot_be_seen_or_confirmed(client, django_user_model, register):
    owner = user_with(django_user_model, "add_operation", username="owner")
    stored = uploads.upload_store(
        user=owner, controller=register["controller"], text=TSV_HEADER + "客服\t某\t姓名\t\t\n"
    )
    importer(client, django_user_model)

    assert client.get(f"/import/{stored.token}/")["Location"] == "/import/"
    client.post(f"/import/{stored.token}/confirm/")
    assert uploads.upload_get(stored.token, owner) == stored


def test_an_uploaded_file_name_loses_its_bidirectional_override(django_user_model, register):
    owner = user_with(django_user_model, "add_operation", username="owner")
    data = (TSV_HEADER + "客服\t某\t姓名\t\t\n").encode()

    stored = uploads.upload_store(
        user=owner, controller=register["controller"], file_name="evil\u202exslt.tsv", data=data
    )

    assert stored.file_name == "evilxslt.tsv"


def test_an_expired_upload_is_refused_and_deleted(django_user_model, register, settings):
    owner = user_with(django_user_model, "add_operation", username="owner")
    stored = uploads.upload_store(
        user=owner, controller=register["controller"], text=TSV_HEADER + "客服\t某\t姓名\t\t\n"
    )
    settings.REGISTER_UPLOAD_TTL = 0

    with pytest.raises(uploads.UploadError) as error:
        uploads.upload_get(stored.token, owner)

    assert error.value.code == "expired"
    assert not list(uploads.upload_dir().glob(f"{stored.token}.*"))


def test_a_stored_file_changed_on_disk_is_refused(django_user_model, register):
    owner = user_with(django_user_model, "add_operation", username="owner")
    stored = uploads.upload_store(
        user=owner, controller=register["controller"], text=TSV_HEADER + "客服\t某\t姓名\t\t\n"
    )
    (uploads.upload_dir() / f"{stored.token}.data").write_bytes(b"tampered")

    with pytest.raises(uploads.UploadError) as error:
        uploads.upload_confirm(stored.token, owner)

    assert error.value.code == "changed"


def test_the_stored_record_keeps_the_sha256_of_the_bytes(django_user_model, register):
    owner = user_with(django_user_model, "add_operation", username="owner")
    content = TSV_HEADER + "客服\t某\t姓名\t\t\n"

    stored = uploads.upload_store(user=owner, controller=register["controller"], text=content)

    assert stored.sha256 == hashlib.sha256(content.encode()).hexdigest()


def test_a_malformed_token_never_reaches_the_file_system(django_user_model):
    owner = user_with(django_user_model, "add_operation", username="owner")

    with pytest.raises(uploads.UploadError):
        uploads.upload_get("../../etc/passwd", owner)


def test_discarding_forgets_the_upload(client, django_user_model, register):
    importer(client, django_user_model)
    location = upload(client, TSV_HEADER + "客服\t某\t姓名\t\t\n")["Location"]
    token = location.rstrip("/").rsplit("/", 1)[1]

    client.post(f"/import/{token}/discard/")

    assert not list(uploads.upload_dir().glob(f"{token}.*"))


# --- Published versions and what changed -------------------------------------------------------


def publish(controller, label: str, day: datetime.date = DAY):
    return services.version_publish(controller=controller, label=label, updated_on=day, effective_on=day)


def add_id_checker(register, name: str = "新核验有限公司"):
    return make_operation(
        service=register["identity"].service,
        processor=make_processor(name_zh=name, contact_phone="010-55556666"),
        data_items=["身份证号"],
        purposes=["identity_verification"],
    )


def test_the_disclosure_page_shows_the_published_version_with_its_label_and_dates(client, register):
    services.version_publish(
        controller=register["controller"],
        label="2024-v1",
        updated_on=datetime.date(2024, 1, 1),
        effective_on=datetime.date(2024, 1, 15),
    )

    page = squash(text(client.get("/disclosure/acme/", HTTP_ACCEPT_LANGUAGE="en")))

    assert "Version 2024-v1" in page
    assert "Version updated on 2024-01-01" in page
    assert "Version in effect since 2024-01-15" in page


def test_unpublished_edits_stay_off_the_published_table(client, register):
    publish(register["controller"], "v1")
    add_id_checker(register)

    page = text(client.get("/disclosure/acme/"))

    assert "新核验有限公司" not in page
    assert "某短信有限公司" in page


def test_staff_see_an_unpublished_table_marked_as_a_draft(client, django_user_model, register):
    assert "Not yet published" not in text(client.get("/disclosure/acme/", HTTP_ACCEPT_LANGUAGE="en"))

    client.force_login(django_user_model.objects.create_superuser("boss"))

    assert "Not yet published" in text(client.get("/disclosure/acme/", HTTP_ACCEPT_LANGUAGE="en"))


def test_the_embed_shows_the_published_version_too(client, register):
    publish(register["controller"], "v1")
    add_id_checker(register)

    page = text(client.get("/disclosure/acme/embed/"))

    assert "新核验有限公司" not in page
    assert "v1" in page


def test_an_older_version_stays_viewable_and_downloadable(client, register):
    # Older versions are public only when the controller shows every version (the default is the latest).
    Controller.objects.filter(pk=register["controller"].pk).update(public_versions=PublicVersions.ALL)
    publish(register["controller"], "v1")
    add_id_checker(register)
    publish(register["controller"], "v2", DAY + datetime.timedelta(days=1))

    assert "新核验有限公司" in text(client.get("/disclosure/acme/"))
    assert "新核验有限公司" not in text(client.get("/disclosure/acme/versions/v1/"))
    response = client.get("/disclosure/acme/versions/v1/download/?format=csv&lang=zh")
    rows = list(csv.reader(io.StringIO(response.getvalue().decode("utf-8-sig"))))
    assert rows[0][0] == "服务/功能名称"
    assert len(rows) == 1 + 3
    assert client.get("/disclosure/acme/versions/v1/download/?format=xlsx").getvalue()[:2] == b"PK"


def test_a_version_is_found_by_its_id_too(client, register):
    version = publish(register["controller"], "v1")

    assert client.get(f"/disclosure/acme/versions/{version.pk}/").status_code == 200
    assert client.get("/disclosure/acme/versions/v9/").status_code == 404


def test_the_versions_list_links_each_version_to_the_one_before(admin_client, register):
    publish(register["controller"], "v1")
    publish(register["controller"], "v2", DAY + datetime.timedelta(days=1))

    page = text(admin_client.get("/disclosure/acme/versions/"))

    assert "/disclosure/acme/diff/?from=v1&amp;to=v2" in page
    assert "/disclosure/acme/diff/?from=v2&amp;to=live" in page


def test_the_diff_lists_a_new_recipient_of_id_numbers_as_a_material_change(admin_client, register):
    publish(register["controller"], "v1")
    add_id_checker(register)
    publish(register["controller"], "v2", DAY + datetime.timedelta(days=1))

    response = admin_client.get("/disclosure/acme/diff/?from=v1&to=v2", HTTP_ACCEPT_LANGUAGE="en")
    page = text(response)

    assert response.context["diff"].is_material
    material = page.split('id="material-heading"')[1]
    assert "新核验有限公司" in material
    assert '<strong class="sensitive">Resident ID number</strong>' in material
    assert "Material change" in page


def test_contact_changes_are_listed_apart_as_minor(admin_client, register):
    publish(register["controller"], "v1")
    services.processor_update(processor=register["vendor"], contact_phone="010-99999999")

    page = text(admin_client.get("/disclosure/acme/diff/?from=v1&to=live", HTTP_ACCEPT_LANGUAGE="en"))

    assert 'id="material-heading"' not in page
    minor = page.split('id="minor-heading"')[1]
    assert "010-12345678" in minor and "010-99999999" in minor


def test_the_diff_downloads_as_a_change_notice_and_a_workbook(admin_client, register):
    publish(register["controller"], "v1")
    add_id_checker(register)

    notice = admin_client.get("/disclosure/acme/diff/?from=v1&to=live&format=md&lang=zh")
    workbook = admin_client.get("/disclosure/acme/diff/?from=v1&to=live&format=xlsx")

    assert "新核验有限公司" in notice.content.decode()
    assert notice["Content-Type"].startswith("text/markdown")
    assert workbook.content[:2] == b"PK"


def test_the_public_may_compare_versions_but_not_see_unpublished_changes(client, register):
    publish(register["controller"], "v1")

    assert client.get("/disclosure/acme/diff/?from=v1&to=v1").status_code == 200
    assert client.get("/disclosure/acme/diff/?from=v1&to=live").status_code == 403


# --- Findings, history, imports, deletion notices -----------------------------------------------


def test_the_findings_page_shows_severity_reference_subject_and_fix(admin_client, register):
    page = text(admin_client.get("/findings/", HTTP_ACCEPT_LANGUAGE="en"))

    assert "Data items not mapped to a category" in page
    assert "PIPL Art. 51(2)" in page
    assert "Map each item to a data category" in page
    assert f'href="/processors/{register["group"].pk}/"' in page


def test_the_findings_page_filters_by_severity(admin_client, register):
    response = admin_client.get("/findings/?severity=low")

    assert response.context["findings"]
    assert {finding.severity for finding in response.context["findings"]} == {"low"}


def test_the_dashboard_sums_up_the_findings(admin_client, register):
    response = admin_client.get("/")

    assert response.context["findings_total"] == sum(
        count for *_, count in response.context["findings_by_severity"]
    )
    assert "/findings/?severity=high" in text(response)


def test_the_dashboard_lists_recent_imports_only_when_there_are_some(admin_client, register):
    assert 'id="imports-heading"' not in text(admin_client.get("/"))

    ImportRecord.objects.create(
        file_name="table.xlsx", sha256="0" * 64, result="imported", counts={"operations": 3}
    )

    page = text(admin_client.get("/"))
    assert 'id="imports-heading"' in page
    assert "table.xlsx" in page


def test_the_processor_page_shows_its_findings_and_history(admin_client, register):
    services.processor_update(processor=register["checker"], contact_phone="010-11112222")

    page = text(admin_client.get(f"/processors/{register['checker'].pk}/", HTTP_ACCEPT_LANGUAGE="en"))

    history = page.split('id="history-heading"')[1]
    assert "010-11112222" in history
    assert 'id="findings-heading"' in page
    assert f"/admin/processors/processor/{register['checker'].pk}/history/" in page


def test_the_deletion_notice_lists_the_recipients_of_a_category_with_their_phone(admin_client, register):
    page = text(admin_client.get("/deletion-notice/?categories=手机号"))

    assert "某短信有限公司" in page
    assert "010-12345678" in page
    assert "某核验有限公司" not in page


def test_the_deletion_notice_takes_several_categories_and_downloads_as_csv(admin_client, register):
    response = admin_client.get("/deletion-notice/?categories=手机号、身份证号&controller=acme&format=csv")

    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert {row[0] for row in rows[1:]} == {"某短信有限公司", "某核验有限公司"}


def test_an_unknown_category_in_a_deletion_notice_suggests_close_names(admin_client, register):
    response = admin_client.get("/deletion-notice/?categories=身分证号", HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 400
    page = response.content.decode()
    assert "Unknown data category" in page
    assert "身份证号" in page


# --- Query counts -------------------------------------------------------------------------------

# Each page's queries for a superuser, whatever the number of rows. Every count starts with the session
# and the user (2); the filter form's choices (category tree, purposes, processors, services with their
# controllers) are 5 more on the explorer and the matrix.
PAGE_QUERIES = {
    # On a first view after a write (its figures are then cached under the register's revision): the
    # revision, the figures, top categories, category groups, controllers, recent operations, recent
    # processors, recent imports; the stored findings' counts and top rows (2); the charts (2); the
    # reviews due: a count and a list each for operations and processors (4)
    "dashboard": 22,
    # count, page, data items, purposes, actions
    "explorer": 12,
    # ... and one to resolve the category
    "explorer_filtered": 13,
    # the recipients' count and page, two aggregates for the cells and totals, the category groups
    "matrix": 12,
    # processor, members, aliases, operations (1 + 3 prefetches); its stored findings (its operations'
    # ids, one page of findings, the decider; the count only past a page); its history (6)
    "processor": 16,
    # category, aliases, children; a root has no ancestors; the register's revision, the recipients' ids
    # in order and the operation count (both cached per revision); for the page's recipients only
    # (selectors.category_recipient_page): their processors and members, and the distinct (recipient,
    # category), (recipient, service) and (recipient, purpose) rows
    "category": 17,
    # the tree, the register's revision, the operation count per category (cached per revision)
    "categories": 5,
    # controller, the version in effect (none), the services' row counts, the page's ids, extra sensitive
    # categories, operations (1 + 4 prefetches), dates, the recipients abroad (2); for the owner's notice
    # the last published version, whether anything changed since, and the publish role
    "disclosure": 17,
    "embed": 15,
    # the controller choices, the register's revision, the stored findings' counts (cached per revision
    # and filters) and one page
    "findings": 6,  # (the page count is the counts' total)
    # ... and the chosen controller
    "findings_filtered": 7,
    # the controller choices and the chosen one, the category and its subtree's ids, the register's
    # revision, the categories held per recipient (with whether a flow is active), the recipients, their
    # members, the categories named (these four cached per revision: a first view), the letters already
    # recorded; for the page's recipients their processors and groups, operations and services
    # (processors.notices)
    "deletion_notice": 15,
    "deletion_notice_csv": 12,  # the same notice, every recipient (in batches), without the letters
    # controller, the version in effect, its stored pages (rendered here on the first request: its
    # snapshot, then the stored page written in a transaction); for the owner's notice the last
    # published version, whether anything changed since, and the publish role
    "disclosure_published": 13,
    "embed_published": 10,
    # controller, the versions, the version in effect, the publish role
    "versions": 6,
    # controller, the version by its label, the publish role (for "withdraw"); its table rendered and
    # stored on this first request (as for the published page)
    "version": 11,
    "version_download": 5,
    # controller, the versions (both sides are among them), the stored diff (computed at publication)
    "diff": 5,
    "diff_markdown": 4,
    # controller, the versions, the rows changed since publication (histories of operations, items,
    # services, recipients and members; the stored summary; those rows live with their prefetches and
    # the version's entries for them) — not the live register's whole snapshot
    "diff_live": 13,
}


def page_urls(built: dict) -> dict[str, str]:
    member = next(processor for processor in built["processors"] if processor.member_of_id)
    code = built["controller"].code
    return {
        "dashboard": "/",
        "explorer": "/explorer/",
        "explorer_filtered": "/explorer/?category=basic&sensitive=false&ordering=-processor",
        "matrix": "/matrix/",
        "processor": f"/processors/{member.pk}/",
        "category": "/categories/basic/",
        "categories": "/categories/",
        "disclosure": f"/disclosure/{code}/",
        "embed": f"/disclosure/{code}/embed/?lang=en",
        "findings": "/findings/",
        "findings_filtered": f"/findings/?severity=high&controller={code}",
        "deletion_notice": f"/deletion-notice/?categories=basic&controller={code}",
        "deletion_notice_csv": "/deletion-notice/?categories=basic&format=csv",
    }


def every_rule_fires(built: dict) -> None:
    """Findings prefetch only for rules that find something: make the prefetching rules find something."""
    member = next(processor for processor in built["processors"] if processor.member_of_id)
    make_processor(name_zh="无联系方式成员", member_of=member.member_of)
    make_operation(
        service=make_service(built["controller"], name="计数服务"),
        processor=member.member_of,
        data_items=["某种未知信息"],
        relationship="provision",
        cross_border=True,
        destination_countries=["US"],
    )


def version_urls(code: str) -> dict[str, str]:
    return {
        "disclosure_published": f"/disclosure/{code}/",
        "embed_published": f"/disclosure/{code}/embed/",
        "versions": f"/disclosure/{code}/versions/",
        "version": f"/disclosure/{code}/versions/v1/",
        "version_download": f"/disclosure/{code}/versions/v1/download/?format=csv",
        "diff": f"/disclosure/{code}/diff/?from=v1&to=v2",
        "diff_live": f"/disclosure/{code}/diff/?from=v2&to=live",
        "diff_markdown": f"/disclosure/{code}/diff/?from=v1&to=v2&format=md",
    }


@pytest.mark.parametrize("operations", [10, 300])
def test_every_page_runs_the_same_number_of_queries_for_10_or_300_operations(admin_client, operations):
    built = generate_register(operations)
    every_rule_fires(built)
    # The session is loaded once before counting; not on the dashboard, whose figures would then be
    # cached: its count here is the cold one (a first view after a write).
    admin_client.get("/accounts/me/")

    assert queries_per_page(admin_client, page_urls(built)) == {
        name: PAGE_QUERIES[name] for name in page_urls(built)
    }


@pytest.mark.parametrize("operations", [10, 300])
def test_version_pages_run_the_same_number_of_queries_for_10_or_300_operations(admin_client, operations):
    built = generate_register(operations)
    controller = built["controller"]
    services.version_publish(controller=controller, label="v1", updated_on=DAY, effective_on=DAY)
    retired = Operation.objects.filter(service__controller=controller).order_by("pk")[:3]
    Operation.objects.filter(pk__in=list(retired.values_list("pk", flat=True))).update(status="retired")
    later = DAY + datetime.timedelta(days=1)
    services.version_publish(controller=controller, label="v2", updated_on=later, effective_on=later)
    admin_client.get("/accounts/me/")

    urls = version_urls(controller.code)
    assert queries_per_page(admin_client, urls) == {name: PAGE_QUERIES[name] for name in urls}


def queries_per_page(client, urls: dict[str, str]) -> dict[str, int]:
    """How many queries each page ran (every page answering 200), so a failure names every page off."""
    counted = {}
    for name, url in urls.items():
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200, name
        counted[name] = len(queries.captured_queries)
    return counted


def test_an_any_choice_sent_as_an_empty_value_filters_nothing(admin_client, register):
    response = admin_client.get("/explorer/?processor=&service=&sensitive=&category=&controller=")

    assert response.context["paginator"].count == 3
