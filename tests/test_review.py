"""Review and ownership: who answers for a row, when it was last reviewed and by whom, when it is due.

Marking reviewed (admin action, the processor page's button, the API) sets the next review one
REGISTER_REVIEW_INTERVAL_DAYS later and is kept in history; the dashboard lists what is overdue.
"""

import datetime

import pytest
from django.contrib.auth.models import Permission
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from processors import services
from processors.models import ControllerRole, Operation, Processor
from processors.views import DASHBOARD_REVIEWS
from tests.builders import make_controller, make_member, make_operation, make_processor, make_service

pytestmark = pytest.mark.django_db


def today() -> datetime.date:
    """The site's date now (not at import: a run that crosses midnight in TIME_ZONE would disagree)."""
    return timezone.localdate()


def long_ago() -> datetime.date:
    return today() - datetime.timedelta(days=40)


def make_user(django_user_model, name: str, *codenames: str, staff: bool = False):
    user = django_user_model.objects.create_user(name, password="pw-for-tests", is_staff=staff)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return django_user_model.objects.get(pk=user.pk)  # permissions are cached per instance


def overdue(row, day: datetime.date | None = None):
    day = day or long_ago()
    type(row).objects.filter(pk=row.pk).update(review_due=day, reviewed_at=timezone.now())
    row.refresh_from_db()
    return row


# --- The service ----------------------------------------------------------------------------------


def test_marking_reviewed_records_who_and_when_and_sets_the_next_review_a_year_on(admin_user):
    operation = make_operation()

    services.operation_mark_reviewed(operation=operation, user=admin_user)

    operation.refresh_from_db()
    assert operation.reviewed_by == admin_user and operation.reviewed_by_name == "admin"
    assert timezone.localdate(operation.reviewed_at) == today()
    assert operation.review_due == today() + datetime.timedelta(days=365)


@override_settings(REGISTER_REVIEW_INTERVAL_DAYS=30)
def test_the_review_interval_is_a_setting(admin_user):
    processor = make_processor()

    services.processor_mark_reviewed(processor=processor, user=admin_user)

    assert Processor.objects.get(pk=processor.pk).review_due == today() + datetime.timedelta(days=30)


def test_a_review_is_kept_in_history_with_who_did_it(admin_user):
    processor = make_processor()

    services.processor_mark_reviewed(processor=processor, user=admin_user)

    latest = processor.history.order_by("-history_id").first()
    assert (latest.history_username, latest.reviewed_by_name) == ("admin", "admin")
    assert latest.review_due == today() + datetime.timedelta(days=365)


# --- The admin ------------------------------------------------------------------------------------


def test_the_admin_action_marks_the_selected_operations_reviewed(admin_client):
    chosen, other = make_operation(), make_operation()

    admin_client.post(
        reverse("admin:processors_operation_changelist"),
        {"action": "mark_reviewed", "_selected_action": [chosen.pk]},
    )

    assert Operation.objects.get(pk=chosen.pk).reviewed_by_name == "admin"
    assert Operation.objects.get(pk=other.pk).reviewed_at is None


def test_the_admin_action_skips_operations_the_user_only_views(django_user_model):
    mine, viewed = make_operation(), make_operation()
    user = make_user(django_user_model, "editor", "view_operation", "change_operation", staff=True)
    make_member(user, mine.service.controller, role=ControllerRole.EDITOR)
    make_member(user, viewed.service.controller, role=ControllerRole.VIEWER)
    client = Client()
    client.force_login(user)

    client.post(
        reverse("admin:processors_operation_changelist"),
        {"action": "mark_reviewed", "_selected_action": [mine.pk, viewed.pk]},
    )

    assert Operation.objects.get(pk=mine.pk).reviewed_by_name == "editor"
    assert Operation.objects.get(pk=viewed.pk).reviewed_at is None


def test_the_admin_action_marks_processors_reviewed(admin_client):
    processor = make_processor()

    admin_client.post(
        reverse("admin:processors_processor_changelist"),
        {"action": "mark_reviewed", "_selected_action": [processor.pk]},
    )

    assert Processor.objects.get(pk=processor.pk).review_due == today() + datetime.timedelta(days=365)


def test_the_operation_form_shows_its_review(admin_client, admin_user):
    operation = make_operation()
    services.operation_mark_reviewed(operation=operation, user=admin_user)

    page = admin_client.get(
        reverse("admin:processors_operation_change", args=[operation.pk]), HTTP_ACCEPT_LANGUAGE="en"
    ).content.decode()

    assert "last reviewed by (name)" in page.lower() and ">admin<" in page
    assert (today() + datetime.timedelta(days=365)).isoformat() in page


# --- The processor page's button ------------------------------------------------------------------


def editor_client(django_user_model, *codenames: str) -> tuple[Client, object]:
    user = make_user(django_user_model, "page-editor", *codenames)
    make_member(user, make_controller(), role=ControllerRole.EDITOR)
    client = Client()
    client.force_login(user)
    return client, user


def test_an_editor_marks_a_processor_reviewed_from_its_page(django_user_model):
    processor = make_processor()
    client, _user = editor_client(django_user_model, "view_processor", "view_operation", "change_processor")
    page = client.get(reverse("processors:processor", args=[processor.pk])).content.decode()
    assert reverse("processors:processor-review", args=[processor.pk]) in page

    response = client.post(reverse("processors:processor-review", args=[processor.pk]))

    assert response.status_code == 302
    processor.refresh_from_db()
    assert (processor.reviewed_by_name, processor.review_due) == (
        "page-editor",
        today() + datetime.timedelta(days=365),
    )


def test_a_reader_sees_no_button_and_cannot_post_a_review(django_user_model):
    processor = make_processor()
    client, _user = editor_client(django_user_model, "view_processor", "view_operation")

    page = client.get(reverse("processors:processor", args=[processor.pk])).content.decode()
    response = client.post(reverse("processors:processor-review", args=[processor.pk]))

    assert reverse("processors:processor-review", args=[processor.pk]) not in page
    assert response.status_code == 403
    assert Processor.objects.get(pk=processor.pk).reviewed_at is None


def test_a_user_without_an_editors_role_cannot_review_a_shared_processor(django_user_model):
    processor = make_processor()
    user = make_user(django_user_model, "no-register", "view_processor", "view_operation", "change_processor")
    client = Client()
    client.force_login(user)

    response = client.post(reverse("processors:processor-review", args=[processor.pk]))

    assert response.status_code == 403
    assert Processor.objects.get(pk=processor.pk).reviewed_at is None


def test_the_review_button_needs_the_csrf_token(django_user_model):
    processor = make_processor()
    _client, user = editor_client(django_user_model, "view_processor", "view_operation", "change_processor")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)

    response = client.post(reverse("processors:processor-review", args=[processor.pk]))

    assert response.status_code == 403
    assert Processor.objects.get(pk=processor.pk).reviewed_at is None


# --- The dashboard and the filter -----------------------------------------------------------------


def member_client(django_user_model, *controllers) -> Client:
    user = make_user(django_user_model, "reader", "view_operation", "view_processor")
    make_member(user, *controllers, role=ControllerRole.VIEWER)
    client = Client()
    client.force_login(user)
    return client


def test_the_dashboard_lists_overdue_reviews_of_the_users_registers_only(django_user_model):
    mine, theirs = make_controller(), make_controller()
    late = overdue(make_operation(service=make_service(mine), processor=make_processor(name_zh="迟审公司")))
    overdue(make_operation(service=make_service(theirs), processor=make_processor(name_zh="别家公司")))
    make_operation(service=make_service(mine))  # never reviewed
    client = member_client(django_user_model, mine)

    response = client.get("/", HTTP_ACCEPT_LANGUAGE="en")

    reviews = response.context["overdue_operations"]
    assert [row.pk for row in reviews["rows"]] == [late.pk]
    assert (reviews["overdue"], reviews["never"]) == (1, 1)
    section = response.content.decode().split('id="reviews-heading"', 1)[1]
    assert "迟审公司" in section and "别家公司" not in section
    assert "?review=overdue" in section


def test_the_dashboard_list_is_bounded_and_counts_the_rest(admin_client):
    service = make_service()
    for _ in range(DASHBOARD_REVIEWS + 2):
        overdue(make_operation(service=service, processor=make_processor()))

    response = admin_client.get("/", HTTP_ACCEPT_LANGUAGE="en")

    reviews = response.context["overdue_operations"]
    assert (len(reviews["rows"]), reviews["overdue"]) == (DASHBOARD_REVIEWS, DASHBOARD_REVIEWS + 2)
    assert f"All {DASHBOARD_REVIEWS + 2} overdue operations" in response.content.decode()


def test_the_dashboard_lists_overdue_processors_that_receive_from_the_users_registers(django_user_model):
    mine = make_controller()
    receiving = overdue(make_processor(name_zh="收数公司"))
    make_operation(service=make_service(mine), processor=receiving)
    overdue(make_processor(name_zh="无关公司"))
    client = member_client(django_user_model, mine)

    reviews = client.get("/").context["overdue_processors"]

    assert [row.pk for row in reviews["rows"]] == [receiving.pk]


def test_the_review_filter_finds_overdue_and_never_reviewed_operations(admin_client, api_client):
    late = overdue(make_operation())
    overdue(make_operation(), day=today())  # due today is not overdue
    never = make_operation()

    def ids(state: str) -> list[int]:
        return [
            row["id"] for row in api_client.get("/api/v1/operations/", {"review": state}).json()["results"]
        ]

    assert ids("overdue") == [late.pk]
    assert ids("never") == [never.pk]
    explorer = admin_client.get(reverse("processors:explorer"), {"review": "overdue"})
    assert [operation.pk for operation in explorer.context["object_list"]] == [late.pk]
    assert api_client.get("/api/v1/operations/", {"review": "soon"}).status_code == 400


# --- The API --------------------------------------------------------------------------------------


def test_the_api_shows_review_fields_read_only(api_client, admin_user):
    operation = make_operation()
    services.operation_mark_reviewed(operation=operation, user=admin_user)

    patched = api_client.patch(
        f"/api/v1/operations/{operation.pk}/", {"review_due": "2000-01-01", "notes": "x"}, format="json"
    )

    assert patched.status_code == 200, patched.content
    body = patched.json()
    assert (body["reviewed_by"], body["review_due"]) == ("admin", str(today() + datetime.timedelta(days=365)))
    assert Operation.objects.get(pk=operation.pk).review_due == today() + datetime.timedelta(days=365)


def test_the_api_marks_an_operation_and_a_processor_reviewed(api_client):
    operation = make_operation()

    marked = api_client.post(f"/api/v1/operations/{operation.pk}/mark-reviewed/")
    processor = api_client.post(f"/api/v1/processors/{operation.processor_id}/mark-reviewed/")

    assert marked.status_code == 200, marked.content
    assert (marked.json()["reviewed_by"], marked.json()["review_due"]) == (
        "admin",
        str(today() + datetime.timedelta(days=365)),
    )
    assert processor.status_code == 200 and processor.json()["reviewed_by"] == "admin"


def test_the_api_refuses_a_review_outside_the_users_editing_role(django_user_model):
    viewed, elsewhere = make_operation(), make_operation()
    user = make_user(django_user_model, "api-viewer", "view_operation", "change_operation")
    make_member(user, viewed.service.controller, role=ControllerRole.VIEWER)
    client = APIClient()
    client.force_authenticate(user)

    as_viewer = client.post(f"/api/v1/operations/{viewed.pk}/mark-reviewed/")
    as_stranger = client.post(f"/api/v1/operations/{elsewhere.pk}/mark-reviewed/")

    assert (as_viewer.status_code, as_stranger.status_code) == (404, 404)
    assert not Operation.objects.filter(reviewed_at__isnull=False).exists()


def test_the_api_review_needs_the_change_permission(django_user_model):
    operation = make_operation()
    user = make_user(django_user_model, "api-reader", "view_operation")
    make_member(user, operation.service.controller, role=ControllerRole.EDITOR)
    client = APIClient()
    client.force_authenticate(user)

    assert client.post(f"/api/v1/operations/{operation.pk}/mark-reviewed/").status_code == 403
