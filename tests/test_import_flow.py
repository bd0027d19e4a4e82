"""One import flow for the site and the admin: the same views and templates, each in its own frame."""

from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from processors.models import Controller, ControllerMembership, ControllerRole, ImportRecord, Operation
from tests.builders import make_controller, make_member

pytestmark = pytest.mark.django_db

TABLE = (
    "服务/功能名称\t服务主体\t处理个人信息范围\t处理个人信息目的\t处理个人信息方式\n"
    "客服\t某客服有限公司\t姓名\t客户服务\t使用\n"
)
STEPS = {
    "site": ("processors:import", "processors:import-preview", "processors:import-confirm"),
    "admin": (
        "admin:processors_operation_import",
        "admin:processors_operation_import_preview",
        "admin:processors_operation_import_confirm",
    ),
}


@pytest.fixture(autouse=True)
def upload_dir(settings, tmp_path):
    settings.REGISTER_UPLOAD_DIR = str(tmp_path / "uploads")


@pytest.fixture(autouse=True)
def controller():
    return make_controller(code="acme")


def template_names(response) -> list[str]:
    return [template.name for template in response.templates]


def preview_url(client, place: str) -> str:
    upload, _preview, _confirm = STEPS[place]
    return client.post(reverse(upload), {"controller": "acme", "text": TABLE})["Location"]


@pytest.mark.parametrize(
    ("place", "frame"),
    [("site", "processors/import/site_page.html"), ("admin", "admin/processors/import_page.html")],
)
def test_the_upload_and_preview_pages_are_one_set_of_templates_in_each_places_frame(
    admin_client, place, frame
):
    upload = admin_client.get(reverse(STEPS[place][0]))
    preview = admin_client.get(preview_url(admin_client, place))

    assert template_names(upload)[:2] == ["processors/import/upload.html", frame]
    assert template_names(preview)[:2] == ["processors/import/preview.html", frame]


def test_the_admin_frame_shows_the_admin_header_and_breadcrumbs(admin_client):
    page = admin_client.get(reverse("admin:processors_operation_import")).content.decode()

    assert 'id="site-name"' in page
    assert 'class="breadcrumbs"' in page
    assert reverse("admin:processors_operation_changelist") in page


@pytest.mark.parametrize("place", ["site", "admin"])
def test_the_preview_posts_to_its_own_places_confirm_step(admin_client, place):
    url = preview_url(admin_client, place)
    token = url.rstrip("/").rsplit("/", 1)[-1]

    page = admin_client.get(url).content.decode()

    assert f'action="{reverse(STEPS[place][2], args=[token])}"' in page


@pytest.mark.parametrize("place", ["site", "admin"])
def test_opening_the_confirm_address_goes_back_to_the_check_and_imports_nothing(admin_client, place):
    url = preview_url(admin_client, place)
    token = url.rstrip("/").rsplit("/", 1)[-1]

    response = admin_client.get(reverse(STEPS[place][2], args=[token]))

    assert response.status_code == 302
    assert response["Location"] == url
    assert Operation.objects.count() == 0


@pytest.mark.parametrize(("place", "channel"), [("site", "browser"), ("admin", "admin")])
def test_each_place_records_its_own_channel(admin_client, place, channel):
    url = preview_url(admin_client, place)
    token = url.rstrip("/").rsplit("/", 1)[-1]

    admin_client.post(reverse(STEPS[place][2], args=[token]))

    assert set(ImportRecord.objects.values_list("channel", "result")) == {(channel, "imported")}


# --- A too-wide row (past openpyxl's last column letter) at every step ----------------------------

WIDE_TEXT = "\t".join(f"h{index}" for index in range(18_300)) + "\n客服\t某客服有限公司\n"


@pytest.mark.parametrize("place", ["site", "admin"])
def test_a_too_wide_row_is_refused_with_its_location_at_upload_preview_and_confirm(admin_client, place):
    upload, _preview, confirm = STEPS[place]

    preview = admin_client.get(preview_url_of(admin_client, place, WIDE_TEXT), HTTP_ACCEPT_LANGUAGE="en")
    assert preview.status_code == 200
    text = preview.content.decode()
    assert "at most 100 are read" in text and "AAAV" in text
    token = preview.wsgi_request.resolver_match.kwargs["token"]

    confirmed = admin_client.post(reverse(confirm, args=[token]), follow=True, HTTP_ACCEPT_LANGUAGE="en")
    assert confirmed.status_code == 200
    assert "at most 100 are read" in confirmed.content.decode()
    assert not Operation.objects.exists()
    assert ImportRecord.objects.filter(result="failed").exists()


def test_a_too_wide_file_is_refused_by_the_api_in_its_error_shape(api_client):
    from django.core.files.uploadedfile import SimpleUploadedFile

    wide = SimpleUploadedFile("wide.csv", WIDE_TEXT.replace("\t", ",").encode())
    response = api_client.post(
        "/api/v1/imports/",
        {"controller": "acme", "file": wide},
        format="multipart",
        HTTP_ACCEPT_LANGUAGE="en",
    )

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "import_rejected"
    assert "row 1, column AAAV" in error["message"] and "at most 100 are read" in error["message"]
    assert not Operation.objects.exists()


def preview_url_of(client, place: str, text: str) -> str:
    upload, _preview, _confirm = STEPS[place]
    return client.post(reverse(upload), {"controller": "acme", "text": text})["Location"]


# --- The person's choices: which table, which field, which controller, which version -------------

REAL = Path(settings.BASE_DIR) / "tests" / "data" / "real"


def upload_file(client, place: str, name: str, controller: str = "acme", **extra) -> str:
    """Upload a file of the real-table corpus in a place; the preview's address."""
    file = SimpleUploadedFile(name, (REAL / name).read_bytes())
    response = client.post(reverse(STEPS[place][0]), {"controller": controller, "file": file, **extra})
    assert response.status_code == 302, response.content.decode()[:2000]
    return response["Location"]


def token_of(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def checked_table(page) -> int:
    form = page.context["tables"]
    return next(table["index"] for table in form if table["chosen"])


@pytest.mark.parametrize("place", ["site", "admin"])
def test_a_document_with_three_tables_lists_them_all_with_the_likeliest_chosen(admin_client, place):
    page = admin_client.get(upload_file(admin_client, place, "01-jiamai-sdk.md"), HTTP_ACCEPT_LANGUAGE="en")
    text = page.content.decode()

    assert text.count('type="radio" name="table"') == 3
    tables = [("主要SDK列表", "使用SDK名称"), ("厂商通道SDK", "合作目的"), ("其他SDK", "所属机构")]
    for title, header in tables:
        assert title in text and header in text
    assert "5 rows × 5 columns" in text and "6 rows × 5 columns" in text
    chosen = checked_table(page)
    assert chosen == max(page.context["report"].tables, key=lambda table: table["score"])["index"]
    assert f'id="table-{chosen}" value="{chosen}" checked' in text
    # The main list (主要SDK列表) is preselected, not the 厂商通道SDK list after it for one more row.
    assert chosen == 0
    assert page.context["report"].rows == 5


@pytest.mark.parametrize("place", ["site", "admin"])
def test_choosing_another_table_checks_and_imports_that_table(admin_client, place):
    url = upload_file(admin_client, place, "01-jiamai-sdk.md")

    chosen = admin_client.post(url, {"step": "table", "table": "1"})
    assert chosen.status_code == 302
    page = admin_client.get(url)

    assert checked_table(page) == 1
    assert page.context["report"].rows == 6
    admin_client.post(reverse(STEPS[place][2], args=[token_of(url)]))
    assert Operation.objects.count() == 6
    assert Operation.objects.filter(service__name__icontains="荣耀").exists()  # a row of table 2 only
    assert not Operation.objects.filter(service__name__icontains="极光").exists()  # table 1's


def test_a_table_that_is_not_in_the_document_is_refused_and_changes_nothing(admin_client):
    url = upload_file(admin_client, "site", "01-jiamai-sdk.md")

    response = admin_client.post(url, {"step": "table", "table": "7"})

    assert response.status_code == 400
    assert checked_table(admin_client.get(url)) == checked_table(response)


@pytest.mark.parametrize("place", ["site", "admin"])
def test_an_unknown_header_has_the_field_its_content_suggests_preselected(admin_client, place):
    # A sub-processor list whose "DecisionRules Regions" column holds country names.
    page = admin_client.get(
        upload_file(admin_client, place, "14-decisionrules-subprocessors.md"), HTTP_ACCEPT_LANGUAGE="en"
    )
    text = page.content.decode()

    assert "“DecisionRules Regions”" in text
    assert '<option value="country" selected>' in text
    assert "Proposed from the column" in text


def test_accepting_the_proposal_as_shown_makes_the_file_importable(admin_client):
    url = upload_file(admin_client, "site", "14-decisionrules-subprocessors.md")
    form = admin_client.get(url).context["header_form"]

    admin_client.post(url, {"step": "map", **{name: field.initial for name, field in form.fields.items()}})
    page = admin_client.get(url)

    assert page.context["report"].ok
    assert page.context["upload"].header_map == {"DecisionRules Regions": "country"}
    # The match stays on the page, changeable, and is no longer called a proposal.
    assert "header_0" in page.context["header_form"].fields
    assert not page.context["header_form"].proposed


def test_a_field_the_person_chose_wins_over_the_proposal(admin_client):
    url = upload_file(admin_client, "site", "14-decisionrules-subprocessors.md")

    admin_client.post(url, {"step": "map", "header_0": "ignore"})
    text = admin_client.get(url).content.decode()

    assert '<option value="ignore" selected>' in text
    assert '<option value="country" selected>' not in text


# --- A new controller in the upload step ----------------------------------------------------------

NEW = {"controller": "+new", "new_code": "bento", "new_name_en": "Bento", "new_name_zh": ""}


@pytest.mark.parametrize("place", ["site", "admin"])
def test_a_new_controller_is_created_only_when_the_import_is_confirmed(admin_client, admin_user, place):
    url = upload_file(admin_client, place, "12-bento-subprocessors.md", **NEW)

    page = admin_client.get(url, HTTP_ACCEPT_LANGUAGE="en")
    assert "is created when you confirm the import" in page.content.decode()
    assert page.context["report"].ok and page.context["report"].rows == 19
    assert not Controller.objects.filter(code="bento").exists()

    admin_client.post(reverse(STEPS[place][2], args=[token_of(url)]))

    bento = Controller.objects.get(code="bento")
    assert bento.name_en == "Bento"
    assert Operation.objects.filter(service__controller=bento).count() == 19
    assert ControllerMembership.objects.filter(controller=bento, user=admin_user, role=ControllerRole.ADMIN)


def test_a_discarded_upload_for_a_new_controller_leaves_no_controller_and_no_record(admin_client):
    url = upload_file(admin_client, "site", "12-bento-subprocessors.md", **NEW)
    admin_client.get(url)

    admin_client.post(reverse("processors:import-discard", args=[token_of(url)]))

    assert not Controller.objects.filter(code="bento").exists()
    assert not ImportRecord.objects.exists()


def importer(django_user_model, *codenames: str):
    user = django_user_model.objects.create_user("dpo", password="x")
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="processors", codename__in=codenames)
    )
    return user


def test_a_user_with_the_add_controller_permission_becomes_the_admin_of_the_controller_made(
    client, django_user_model
):
    user = importer(django_user_model, "add_operation", "add_controller", "view_operation")
    client.force_login(user)
    assert '<option value="+new"' in client.get(reverse("processors:import")).content.decode()

    url = upload_file(client, "site", "12-bento-subprocessors.md", **NEW)
    client.post(reverse("processors:import-confirm", args=[token_of(url)]))

    membership = ControllerMembership.objects.get(controller__code="bento")
    assert (membership.user, membership.role) == (user, ControllerRole.ADMIN)
    assert not ControllerMembership.objects.filter(controller__code="acme", user=user).exists()


def test_an_editor_without_the_add_controller_permission_cannot_create_one(client, django_user_model):
    user = importer(django_user_model, "add_operation")
    make_member(user, role=ControllerRole.EDITOR)
    client.force_login(user)
    assert '<option value="+new"' not in client.get(reverse("processors:import")).content.decode()

    file = SimpleUploadedFile("t.tsv", TABLE.encode())
    response = client.post(reverse("processors:import"), {**NEW, "file": file})

    assert response.status_code == 400
    assert not Controller.objects.filter(code="bento").exists()


def test_a_new_controller_needs_a_free_code_and_a_name(admin_client):
    taken = admin_client.post(
        reverse("processors:import"), {**NEW, "new_code": "acme", "text": TABLE}, HTTP_ACCEPT_LANGUAGE="en"
    )
    nameless = admin_client.post(
        reverse("processors:import"), {**NEW, "new_name_en": "", "text": TABLE}, HTTP_ACCEPT_LANGUAGE="en"
    )

    assert taken.status_code == nameless.status_code == 400
    assert taken.context["form"].errors["new_code"]
    assert nameless.context["form"].errors["new_name_zh"]
    assert Controller.objects.count() == 1


def test_a_code_taken_between_upload_and_confirm_is_refused_and_nothing_is_imported(admin_client):
    url = upload_file(admin_client, "site", "12-bento-subprocessors.md", **NEW)
    make_controller(code="bento", name_en="Someone else's")

    response = admin_client.post(reverse("processors:import-confirm", args=[token_of(url)]), follow=True)

    assert "bento" in response.content.decode()
    assert not Operation.objects.exists()
    assert not ControllerMembership.objects.filter(controller__code="bento").exists()


# --- Rows that match the register, and a new version of the table ---------------------------------


@pytest.fixture
def itrus_register(controller):
    from processors.demo import demo_load

    demo_load()
    return Controller.objects.get(code="itrus")


def test_rows_matching_dated_operations_ask_whether_the_table_is_a_new_version(admin_client, itrus_register):
    url = upload_file(admin_client, "site", "itrus-sdk-table.docx", controller="itrus")

    page = admin_client.get(url, HTTP_ACCEPT_LANGUAGE="en")
    text = page.content.decode()

    assert "Is this a new version of the table?" in text
    assert "43 rows match operations that the register holds with the date 2024-05-20" in text
    assert page.context["report"].counts["operations"].created == 0


def test_answering_new_version_imports_the_rows_beside_the_dated_ones(admin_client, itrus_register):
    url = upload_file(admin_client, "site", "itrus-sdk-table.docx", controller="itrus")

    admin_client.post(url, {"step": "version", "version": "new", "effective_from": "2025-01-01"})
    page = admin_client.get(url)
    assert page.context["report"].counts["operations"].created == 43
    admin_client.post(reverse("processors:import-confirm", args=[token_of(url)]))

    dated = Operation.objects.filter(service__controller=itrus_register)
    assert dated.filter(effective_from="2025-01-01").count() == 43
    assert dated.filter(effective_from="2024-05-20").count() == 43


def test_a_new_version_needs_its_date(admin_client, itrus_register):
    url = upload_file(admin_client, "site", "itrus-sdk-table.docx", controller="itrus")

    response = admin_client.post(url, {"step": "version", "version": "new"})

    assert response.status_code == 400
    assert response.context["version_form"].errors["effective_from"]


# --- The service of a sub-processor list -----------------------------------------------------------


@pytest.mark.parametrize("place", ["site", "admin"])
def test_the_preview_names_a_sub_processor_lists_service_and_the_confirm_uses_the_name_changed(
    admin_client, place
):
    url = upload_file(admin_client, place, "12-bento-subprocessors.md")
    page = admin_client.get(url, HTTP_ACCEPT_LANGUAGE="en")
    assert page.context["report"].default_service == "All services"
    assert 'name="default_service"' in page.content.decode()
    assert page.context["service_form"]["default_service"].value() == "All services"

    changed = admin_client.post(url, {"step": "service", "default_service": "  Bento   email platform "})
    assert changed.status_code == 302
    page = admin_client.get(url, HTTP_ACCEPT_LANGUAGE="en")
    assert page.context["report"].default_service == "Bento email platform"
    assert "“Bento email platform”" in page.content.decode()

    admin_client.post(reverse(STEPS[place][2], args=[token_of(url)]))
    services = set(Operation.objects.values_list("service__name", flat=True))
    assert services == {"Bento email platform"}
    assert Operation.objects.count() == 19


def test_an_empty_service_name_is_refused_and_the_name_before_it_stays(admin_client):
    url = upload_file(admin_client, "site", "16-sage-subprocessors.md")
    admin_client.post(url, {"step": "service", "default_service": "Synapse"})

    refused = admin_client.post(url, {"step": "service", "default_service": "   "})

    assert refused.status_code == 400
    assert refused.context["service_form"].errors["default_service"]
    assert admin_client.get(url).context["report"].default_service == "Synapse"


# --- Language and suggestions ---------------------------------------------------------------------


def test_the_preview_speaks_the_language_the_user_chose_in_the_session(admin_client):
    url = upload_file(admin_client, "site", "14-decisionrules-subprocessors.md")

    chinese = admin_client.get(url).content.decode()
    admin_client.post(reverse("set_language"), {"language": "en", "next": url})
    english = admin_client.get(url).content.decode()

    assert "未知的列标题" in chinese or "未知列标题" in chinese
    assert "Unknown column header “DecisionRules Regions”" in english
    assert "Unknown column header" not in chinese


def test_unmapped_items_show_the_categories_the_resolver_suggests_in_the_page_language(admin_client):
    text = "服务/功能名称\t服务主体\t处理个人信息范围\n支付\t某支付公司\t交易凭证\n"
    url = admin_client.post(reverse("processors:import"), {"controller": "acme", "text": text})["Location"]

    page = admin_client.get(url, HTTP_ACCEPT_LANGUAGE="en")
    rows = page.context["unmapped_items"]

    assert [row["text"] for row in rows] == ["交易凭证"]
    suggested = rows[0]["categories"]
    assert suggested, "the resolver suggests categories for 交易凭证"
    assert all(category.name_en in page.content.decode() for category in suggested)


@pytest.mark.parametrize(
    ("place", "language", "suggested"), [("site", "en", "Analytics"), ("admin", "zh-hans", "统计分析")]
)
def test_an_unknown_purpose_is_shown_with_the_purposes_closest_in_meaning(
    admin_client, place, language, suggested
):
    # 象皮泥 (20): 神策分析SDK's purpose 驱动业务决策分析 names no purpose; its head word 分析 is analytics'.
    file = SimpleUploadedFile("20-xiangpini-sharing.md", (REAL / "20-xiangpini-sharing.md").read_bytes())
    upload = admin_client.post(
        reverse(STEPS[place][0]), {"controller": "acme", "file": file}, HTTP_ACCEPT_LANGUAGE=language
    )
    page = admin_client.get(upload["Location"], HTTP_ACCEPT_LANGUAGE=language)

    problem = next(
        p for p in page.context["problems"] if p.code == "purpose_unmapped" and p.value == "驱动业务决策分析"
    )
    assert list(problem.suggestions) == [suggested]
    text = page.content.decode()
    assert f'<td data-label="{"Suggestions" if language == "en" else "建议"}">{suggested}</td>' in text
