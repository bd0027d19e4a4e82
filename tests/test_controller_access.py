"""Per-controller access: a member of controller A sees and changes nothing of controller B, on any URL.

The walk visits every URL pattern the project routes (site, API, admin), with B's ids and codes in the
path parameters, as an editor of A who holds every model permission — so what keeps B out is membership
alone. Then the write endpoints are tried on B, and B is compared with what it was.
"""

import re
from dataclasses import dataclass

import pytest
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.test import APIClient

from processors import selectors, services
from processors.disclosure.page import version_key
from processors.models import (
    Controller,
    ControllerRole,
    DataItem,
    ImportRecord,
    Operation,
    PublishedVersion,
    Service,
)
from processors.spreadsheets import uploads
from tests.builders import (
    make_controller,
    make_member,
    make_membership,
    make_operation,
    make_processor,
    make_service,
)

pytestmark = pytest.mark.django_db

# What only B has: none of these may appear on any page an editor of A is given.
B_MARKERS = (
    "bravoco",
    "BravoCorpName",
    "布拉沃名称",
    "BravoServiceName",
    "BravoUsageText",
    "BravoItemText",
    "bravo-file.xlsx",
    "bravo-label-1",
)
A_MARKERS = ("alphaco", "AlphaServiceName", "AlphaUsageText")


@dataclass
class Side:
    controller: Controller
    service: Service
    operation: Operation
    item: DataItem
    record: ImportRecord
    version: PublishedVersion
    token: str


def build_side(prefix: str, code: str, *, admin, processor) -> Side:
    names = {"alpha": ("AlphaCorpName", "阿尔法名称"), "bravo": ("BravoCorpName", "布拉沃名称")}[prefix]
    controller = make_controller(code=code, name_en=names[0], name_zh=names[1])
    service = make_service(controller, name=f"{prefix.title()}ServiceName")
    operation = make_operation(
        service=service,
        processor=processor,
        data_items=(f"{prefix.title()}ItemText",),
        usage_scenario=f"{prefix.title()}UsageText",
    )
    record = ImportRecord.objects.create(
        controller=controller, file_name=f"{prefix}-file.xlsx", sha256="0" * 64, result="imported"
    )
    version = services.version_publish(
        controller=controller,
        label=f"{prefix}-label-1",
        updated_on="2025-01-01",
        effective_on="2025-01-01",
        notes="",
        user=admin,
    )
    upload = uploads.upload_store(user=admin, controller=controller, text="a\tb\n1\t2\n")
    return Side(controller, service, operation, operation.data_items.first(), record, version, upload.token)


@pytest.fixture
def register(admin_user, tmp_path, settings):
    settings.REGISTER_UPLOAD_DIR = str(tmp_path)
    shared = make_processor(name_en="SharedRecipient")
    return {
        "a": build_side("alpha", "alphaco", admin=admin_user, processor=shared),
        "b": build_side("bravo", "bravoco", admin=admin_user, processor=make_processor(name_en="OnlyB")),
    }


@pytest.fixture
def editor_of_a(django_user_model, register):
    user = django_user_model.objects.create_user("editor-a", password="editor-a-password", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="processors"))
    make_member(user, register["a"].controller, role=ControllerRole.EDITOR)
    return django_user_model.objects.get(pk=user.pk)


# --- The walk -------------------------------------------------------------------------------------


def url_templates(patterns=None, prefix: str = ""):
    """Every routed URL as (template, pattern): path() routes and regexes joined from the root."""
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        text = str(entry.pattern.regex.pattern if _is_regex(entry) else entry.pattern)
        if isinstance(entry, URLResolver):
            yield from url_templates(entry.url_patterns, prefix + text)
        elif isinstance(entry, URLPattern):
            yield prefix + text, entry


def _is_regex(entry) -> bool:
    return entry.pattern.__class__.__name__ == "RegexPattern"


MODEL_WORDS = (
    ("importrecord", "record"),
    ("imports", "record"),
    ("publishedversion", "version"),
    ("versions", "version"),
    ("dataitem", "item"),
    ("operation", "operation"),
    ("service", "service"),
    ("controller", "controller"),
)


def value_for(template: str, name: str, side: Side, register) -> str | None:
    """A path parameter filled with the side's objects (B's, or A's for the control)."""
    if name == "code":
        if "categor" in template:
            return "identity"
        if "purpose" in template or "action" in template:
            return "collect" if "action" in template else "identity_verification"
        return side.controller.code
    if name in ("pk", "object_id", "id"):
        for word, attribute in MODEL_WORDS:
            if word in template:
                if attribute == "controller" and "api/" in template:
                    return side.controller.code
                return str(getattr(side, attribute).pk)
        if "processor" in template:
            return str(side.operation.processor_id)
        return "1"
    return {
        "token": side.token,
        "ref": version_key(side.version),
        "against": "previous",
        "fmt": "md",
        "format": "json",
        "app_label": "processors",
        "content_type_id": str(ContentType.objects.get_for_model(Operation).pk),
    }.get(name)


def concrete_paths(side: Side, register):
    """Every routed URL with its parameters filled from the side; catch-alls and odd regexes left out."""
    seen = set()
    for template, _pattern in url_templates():
        path = template.replace("^", "").replace("$", "").replace("\\.", ".").replace("/?", "/")
        path = re.sub(r"<(?:\w+:)?(\w+)>", lambda match: "{" + match.group(1) + "}", path)
        path = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda match: "{" + match.group(1) + "}", path)
        if re.search(r"[()|*+\[\]]", path):
            continue
        names = re.findall(r"{(\w+)}", path)
        values = {name: value_for(template, name, side, register) for name in names}
        if any(value is None for value in values.values()):
            continue
        path = "/" + path.format(**values)
        if path not in seen:
            seen.add(path)
            yield path


def body_text(response) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode("utf-8", "replace")
    return response.content.decode("utf-8", "replace")


def test_the_walk_covers_the_site_the_api_and_the_admin(register):
    paths = list(concrete_paths(register["b"], register))

    assert len(paths) > 100
    assert any(path.startswith("/api/v1/operations/") for path in paths)
    assert any(path.startswith("/admin/processors/operation/") for path in paths)
    assert any(path.startswith("/disclosure/bravoco/") for path in paths)


@pytest.mark.parametrize("side", ["b", "a"])
def test_an_editor_of_a_sees_nothing_of_b_on_any_url(client, editor_of_a, register, side):
    client.force_login(editor_of_a)
    leaks = []
    for path in concrete_paths(register[side], register):
        response = client.get(path)
        assert response.status_code < 500, path
        # A page may echo the address asked for (a 404, a language switch): that is not B's data.
        text = body_text(response).replace(path, "")
        found = [marker for marker in B_MARKERS if marker in text]
        if found:
            leaks.append((path, response.status_code, found))

    assert leaks == [], "\n".join(map(str, leaks))


def test_the_control_pages_show_a(client, editor_of_a, register):
    client.force_login(editor_of_a)
    a = register["a"]
    pages = [
        "/explorer/",
        f"/api/v1/operations/{a.operation.pk}/",
        f"/admin/processors/operation/{a.operation.pk}/change/",
        "/disclosure/alphaco/",
    ]

    for page in pages:
        response = client.get(page)
        assert response.status_code == 200, page
        assert any(marker in body_text(response) for marker in A_MARKERS), page


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/operations/{operation}/",
        "/api/v1/services/{service}/",
        "/api/v1/controllers/bravoco/",
        "/api/v1/imports/{record}/",
        "/api/v1/versions/{version}/",
        "/api/v1/operations/{operation}/history/",
        "/admin/processors/operation/{operation}/change/",
        "/admin/processors/service/{service}/change/",
        "/admin/processors/controller/{controller}/change/",
        "/admin/processors/importrecord/{record}/change/",
        "/admin/processors/publishedversion/{version}/change/",
        "/disclosure/bravoco/",
        "/disclosure/bravoco/versions/",
    ],
)
def test_b_objects_are_not_found_for_an_editor_of_a(client, editor_of_a, register, path):
    b = register["b"]
    client.force_login(editor_of_a)
    url = path.format(
        operation=b.operation.pk,
        service=b.service.pk,
        record=b.record.pk,
        version=b.version.pk,
        controller=b.controller.pk,
    )

    response = client.get(url)

    # The admin answers a missing object with a redirect to its index and a message.
    assert response.status_code in (404, 302), url
    if response.status_code == 302:
        assert response.url == reverse("admin:index")


# --- Writes ---------------------------------------------------------------------------------------


def b_state(b: Side) -> dict:
    controller = Controller.objects.get(pk=b.controller.pk)
    operation = Operation.objects.get(pk=b.operation.pk)
    return {
        "controller": (controller.name_en, controller.disclosure_public),
        "service": Service.objects.get(pk=b.service.pk).name,
        "operation": (operation.usage_scenario, operation.status),
        "operations": Operation.objects.filter(service__controller=controller).count(),
        "services": Service.objects.filter(controller=controller).count(),
        "versions": PublishedVersion.objects.filter(controller=controller).count(),
        "imports": ImportRecord.objects.filter(controller=controller).count(),
        "items": DataItem.objects.filter(operation__service__controller=controller).count(),
    }


def test_an_editor_of_a_changes_nothing_of_b_through_the_api(editor_of_a, register):
    b = register["b"]
    before = b_state(b)
    client = APIClient()
    client.force_authenticate(editor_of_a)
    operation, service = f"/api/v1/operations/{b.operation.pk}/", f"/api/v1/services/{b.service.pk}/"

    assert client.patch(operation, {"usage_scenario": "changed"}, format="json").status_code == 404
    assert client.put(operation, {"usage_scenario": "changed"}, format="json").status_code == 404
    assert client.delete(operation).status_code == 404
    assert client.patch(service, {"name": "changed"}, format="json").status_code == 404
    controller = "/api/v1/controllers/bravoco/"
    assert client.patch(controller, {"disclosure_public": True}, format="json").status_code == 404
    new_service = {"controller": "bravoco", "name": "Sneaked in"}
    assert client.post("/api/v1/services/", new_service, format="json").status_code == 400
    new_operation = {"service": b.service.pk, "processor": b.operation.processor_id}
    assert client.post("/api/v1/operations/", new_operation, format="json").status_code == 400
    moved = {"service": b.service.pk}
    a_operation = f"/api/v1/operations/{register['a'].operation.pk}/"
    assert client.patch(a_operation, moved, format="json").status_code == 400
    imported = {"controller": "bravoco", "text": "a\tb\n1\t2\n", "dry_run": "false"}
    assert client.post("/api/v1/imports/", imported).status_code == 400
    version = {
        "controller": "bravoco",
        "label": "v9",
        "updated_on": "2025-02-01",
        "effective_on": "2025-02-01",
    }
    assert client.post("/api/v1/versions/", version, format="json").status_code == 400

    assert b_state(b) == before


def test_an_editor_of_a_changes_nothing_of_b_through_the_admin(client, editor_of_a, register):
    b = register["b"]
    before = b_state(b)
    client.force_login(editor_of_a)

    change = f"/admin/processors/operation/{b.operation.pk}/change/"
    assert client.post(change, {"usage_scenario": "changed"}).status_code == 302
    delete = f"/admin/processors/operation/{b.operation.pk}/delete/"
    assert client.post(delete, {"post": "yes"}).status_code == 302
    action = {"action": "delete_selected", "_selected_action": [b.service.pk], "post": "yes"}
    client.post("/admin/processors/service/", action)
    controller = f"/admin/processors/controller/{b.controller.pk}/change/"
    client.post(controller, {"code": "bravoco", "name_en": "x", "disclosure_public": "on"})
    publish = reverse("admin:processors_publishedversion_publish")
    response = client.post(
        publish,
        {"controller": "bravoco", "label": "v9", "updated_on": "2025-02-01", "effective_on": "2025-02-01"},
    )
    assert response.status_code == 400

    assert b_state(b) == before


def test_an_editor_of_a_cannot_import_into_b_through_the_browser(client, editor_of_a, register):
    b = register["b"]
    before = b_state(b)
    client.force_login(editor_of_a)

    response = client.post(reverse("processors:import"), {"controller": "bravoco", "text": "a\tb\n1\t2\n"})
    assert response.status_code == 400
    assert "bravoco" not in response.content.decode()
    # An upload made for B by someone else (or before the membership ended) cannot be previewed or confirmed.
    confirm = client.post(reverse("processors:import-confirm", args=[b.token]))
    assert confirm.status_code == 302
    assert b_state(b) == before


def test_an_editor_is_offered_only_their_controllers_to_import_into(client, editor_of_a, register):
    client.force_login(editor_of_a)

    text = client.get(reverse("processors:import")).content.decode()

    assert "alphaco" in text
    assert "bravoco" not in text


def test_an_editor_cannot_publish_but_a_publisher_can(editor_of_a, register):
    a = register["a"].controller
    client = APIClient()
    client.force_authenticate(editor_of_a)
    version = {
        "controller": "alphaco",
        "label": "v2",
        "updated_on": "2025-02-01",
        "effective_on": "2025-02-01",
    }

    assert client.post("/api/v1/versions/", version, format="json").status_code == 400

    make_member(editor_of_a, a, role=ControllerRole.PUBLISHER)
    assert client.post("/api/v1/versions/", version, format="json").status_code == 201


def test_a_viewer_reads_but_does_not_change(django_user_model, register):
    user = django_user_model.objects.create_user("viewer-a")
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="processors"))
    make_member(user, register["a"].controller, role=ControllerRole.VIEWER)
    client = APIClient()
    client.force_authenticate(django_user_model.objects.get(pk=user.pk))
    operation = f"/api/v1/operations/{register['a'].operation.pk}/"

    assert client.get(operation).status_code == 200
    assert client.patch(operation, {"usage_scenario": "changed"}, format="json").status_code == 404


def test_membership_through_a_group_counts(django_user_model, register):
    user = django_user_model.objects.create_user("grouped")
    group = Group.objects.create(name="Bravo team")
    user.groups.add(group)
    make_membership(register["b"].controller, group=group, role=ControllerRole.VIEWER)

    assert list(selectors.controllers_for(user)) == [register["b"].controller]
    assert not selectors.controllers_for(user, role=ControllerRole.EDITOR).exists()


def test_a_staff_user_without_membership_sees_no_controller(client, django_user_model, register):
    user = django_user_model.objects.create_user("outsider", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="processors"))
    client.force_login(user)

    assert client.get("/api/v1/operations/").json()["count"] == 0
    text = client.get("/admin/processors/operation/").content.decode()
    assert "AlphaUsageText" not in text and "BravoUsageText" not in text


def test_superusers_see_every_controller(api_client, register):
    assert api_client.get("/api/v1/operations/").json()["count"] == 2


def test_the_admin_autocomplete_offers_only_a(client, editor_of_a, register):
    client.force_login(editor_of_a)
    params = {
        "app_label": "processors",
        "model_name": "operation",
        "field_name": "service",
        "term": "Service",
    }

    results = client.get(reverse("admin:autocomplete"), params).json()["results"]

    assert [result["id"] for result in results] == [str(register["a"].service.pk)]


def test_a_processor_shows_what_it_receives_only_from_a(client, editor_of_a, register):
    client.force_login(editor_of_a)
    only_b = register["b"].operation.processor_id

    assert "BravoServiceName" not in client.get(f"/processors/{only_b}/").content.decode()
    api = APIClient()
    api.force_authenticate(editor_of_a)
    assert api.get(f"/api/v1/processors/{only_b}/categories/").json()["categories"] == []
    assert api.get("/api/v1/processors/", {"receives": "identity"}).json()["count"] <= 1


# --- Private and unknown codes --------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["", "versions/", "diff/", "download/", "embed/"])
def test_a_private_code_and_an_unknown_one_get_the_same_answer(client, register, suffix):
    private = client.get(f"/disclosure/bravoco/{suffix}")
    unknown = client.get(f"/disclosure/no-such-controller/{suffix}")

    # Anonymous visitors are asked to sign in for both; the answer says nothing about which exists.
    assert private.status_code == unknown.status_code == 302
    assert private.url.split("?")[0] == unknown.url.split("?")[0]


def test_a_signed_in_non_member_gets_404_for_private_and_unknown_codes(client, editor_of_a, register):
    client.force_login(editor_of_a)

    assert client.get("/disclosure/bravoco/").status_code == 404
    assert client.get("/disclosure/no-such-controller/").status_code == 404


def test_a_public_disclosure_stays_public(client, register):
    services.controller_update(controller=register["b"].controller, disclosure_public=True)

    assert client.get("/disclosure/bravoco/").status_code == 200


@pytest.mark.parametrize("path", ["/api/v1/operations/", "/api/v1/processors/", "/api/v1/matrix/"])
def test_b_code_as_a_filter_is_refused_like_an_unknown_one(editor_of_a, register, path):
    client = APIClient()
    client.force_authenticate(editor_of_a)

    private = client.get(path, {"controller": "bravoco"})
    unknown = client.get(path, {"controller": "no-such-controller"})

    assert private.status_code == unknown.status_code == 400
    assert private.json()["error"]["code"] == unknown.json()["error"]["code"]
