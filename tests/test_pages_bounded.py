"""Pages whose cost must not grow with the register, only with what they show (issue 13): the category
page, the deletion notice and the API's version list read the same number of queries, and show the same
rows, on a register of a few operations and on one several times larger."""

import datetime
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from processors import services, taxonomy
from processors.views import CategoryView, DeletionNoticeView
from tests.builders import make_controller, make_operation, make_processor, make_service

pytestmark = pytest.mark.django_db

PAGE = 2  # recipients a page, so a small register has several pages


def grow(controller, recipients: int, operations_each: int, start: int = 0) -> None:
    """Recipients (named so they sort after the first page's) each receiving 姓名 through a few operations."""
    for number in range(start, start + recipients):
        processor = make_processor(name_zh=f"甲龥{number:03d}接收方有限公司")
        for _ in range(operations_each):
            make_operation(
                service=make_service(controller), processor=processor, data_items=("姓名", "手机号")
            )


@pytest.fixture
def first_page(monkeypatch):
    """Two recipients that come first by name, each with its own operations of 姓名."""
    monkeypatch.setattr(CategoryView, "paginate_by", PAGE)
    monkeypatch.setattr(DeletionNoticeView, "paginate_by", PAGE)
    controller = make_controller(code="bounded")
    for name in ("甲一接收方有限公司", "甲二接收方有限公司"):
        make_operation(service=make_service(controller), processor=make_processor(name_zh=name))
    return controller


def timed(client, url: str) -> tuple[int, str]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries), response.content.decode()


def counts_of(client, url: str) -> tuple[int, int]:
    context = client.get(url).context
    return context["recipient_count"], context["operation_count"]


def recipient_rows(html: str) -> list[str]:
    return re.findall(r'<th scope="row"[^>]*>\s*<a href="/processors/\d+/">([^<]+)</a>', html)


def test_the_category_page_reads_the_same_queries_and_rows_on_a_larger_register(admin_client, first_page):
    url = f"/categories/{taxonomy.category_find('姓名').code}/"
    grow(first_page, recipients=2, operations_each=1)
    small_queries, small = timed(admin_client, url)

    grow(first_page, recipients=6, operations_each=3, start=10)
    large_queries, large = timed(admin_client, url)

    assert large_queries == small_queries
    assert recipient_rows(large) == recipient_rows(small) == ["甲一接收方有限公司", "甲二接收方有限公司"]
    assert counts_of(admin_client, url) == (2 + 2 + 6, 2 + 2 + 6 * 3)  # the counts are of the whole register


def test_the_category_page_shows_each_recipient_its_services_and_purposes(admin_client, first_page):
    [recipient, _other] = admin_client.get(f"/categories/{taxonomy.category_find('姓名').code}/").context[
        "recipients"
    ]

    assert recipient.processor.name_zh == "甲一接收方有限公司"
    assert [service.controller.code for service in recipient.services.values()] == ["bounded"]
    assert [purpose.code for purpose in recipient.purposes.values()] == ["identity_verification"]


def test_the_deletion_notice_shows_one_page_of_letters_with_the_same_queries(admin_client, first_page):
    url = "/deletion-notice/?categories=姓名"
    grow(first_page, recipients=2, operations_each=1)
    small_queries, small = timed(admin_client, url)

    grow(first_page, recipients=6, operations_each=3, start=10)
    large_queries, large = timed(admin_client, url)

    assert large_queries == small_queries
    assert recipient_rows(large) == recipient_rows(small) == ["甲一接收方有限公司", "甲二接收方有限公司"]
    assert len(large) - len(small) < 500  # only the counts and the page links differ
    # The CSV for a mailing still holds every recipient.
    csv_rows = admin_client.get(url + "&format=csv").content.decode("utf-8-sig").strip().splitlines()
    assert len(csv_rows) == 1 + 10


def test_the_version_list_counts_operations_without_reading_snapshots(admin_client, first_page):
    services.version_publish(
        controller=first_page,
        label="v1",
        updated_on=datetime.date(2024, 1, 1),
        effective_on=datetime.date(2024, 1, 1),
        user=None,
    )
    grow(first_page, recipients=3, operations_each=2, start=10)
    services.version_publish(
        controller=first_page,
        label="v2",
        updated_on=datetime.date(2024, 2, 1),
        effective_on=datetime.date(2024, 2, 1),
        user=None,
    )

    with CaptureQueriesContext(connection) as queries:
        body = admin_client.get("/api/v1/versions/").json()

    counts = {version["label"]: version["operations"] for version in body["results"]}
    assert counts == {"v1": 2, "v2": 8}
    listing = " ".join(
        query["sql"] for query in queries.captured_queries if "publishedversion" in query["sql"]
    )
    # The counts were stored at publication: no query reads a snapshot (nor its stored pages or diffs).
    assert "publishedversion" in listing
    for column in ('."snapshot"', '."rendered_pages"', '."stored_diffs"'):
        assert column not in listing
