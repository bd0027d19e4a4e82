"""Pages that hold a large register: the disclosure table paged with a jump list, a published version's
table stored once and served as stored, the matrix by group a page of recipients at a time."""

import datetime
import re

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from processors import services
from processors.api import report_serializers
from processors.disclosure import page as disclosure_page
from processors.models import PublishedVersion
from tests.builders import make_controller, make_operation, make_processor, make_service

pytestmark = pytest.mark.django_db

DAY = datetime.date(2024, 1, 1)
ROWS_A_PAGE = 3


@pytest.fixture
def small_pages(monkeypatch):
    """Three rows a page, so a table of a few rows has several pages."""
    monkeypatch.setattr(disclosure_page, "DISCLOSURE_PAGE_ROWS", ROWS_A_PAGE)
    cache.clear()


@pytest.fixture
def long_table():
    """A public controller with two services of 4 and 3 rows; one recipient, on the last page, abroad."""
    controller = make_controller(code="bigco", name_zh="大公司", disclosure_public=True)
    first = make_service(controller, name="第一服务")
    second = make_service(controller, name="第二服务")
    for number in range(4):
        make_operation(service=first, processor=make_processor(name_zh=f"甲{number}接收方有限公司"))
    for number in range(2):
        make_operation(service=second, processor=make_processor(name_zh=f"乙{number}接收方有限公司"))
    make_operation(service=second, processor=make_processor(name_zh="海外接收方公司", country="US"))
    return controller


def recipients_on(html: str) -> list[str]:
    return re.findall(r'<span class="recipient-name">(?:<a [^>]*>)?([^<]+)', html.split("abroad-summary")[0])


def table_part(html: str) -> str:
    """The page's table and its summary (what a published version stores), without the page around it."""
    return html[html.index('<div class="legend"') : html.index('<details class="embed-code')]


def test_the_live_table_is_paged_with_every_row_on_exactly_one_page(client, small_pages, long_table):
    url = reverse("processors:disclosure", args=[long_table.code])

    pages = [client.get(f"{url}?page={number}").content.decode() for number in (1, 2, 3)]

    shown = [name for html in pages for name in recipients_on(html)]
    assert len(shown) == 7 and len(set(shown)) == 7
    assert [len(recipients_on(html)) for html in pages] == [3, 3, 1]
    assert "Page 2 of 3" in pages[1] or "第 2 页" in pages[1] or "2 / 3" in pages[1]


def test_the_jump_list_names_every_service_with_the_page_its_rows_start_on(client, small_pages, long_table):
    second = long_table.services.get(name="第二服务")
    html = client.get(reverse("processors:disclosure", args=[long_table.code]) + "?page=3").content.decode()

    assert f'href="?page=2#service-{second.pk}"' in html
    # On page 2 the second service starts; page 3 continues it, marked, without a second anchor.
    page_two = client.get(reverse("processors:disclosure", args=[long_table.code]) + "?page=2").content
    assert f'id="service-{second.pk}"'.encode() in page_two
    assert f'id="service-{second.pk}"' not in html


def test_every_page_sums_up_the_recipients_abroad_of_the_whole_table(client, small_pages, long_table):
    first_page = client.get(reverse("processors:disclosure", args=[long_table.code])).content.decode()

    assert "海外接收方公司" not in recipients_on(first_page)
    assert "abroad-summary" in first_page and "海外接收方公司" in first_page.split("abroad-summary")[1]


def test_the_download_still_holds_every_row(client, small_pages, long_table):
    response = client.get(reverse("processors:disclosure-download", args=[long_table.code]) + "?format=csv")

    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert body.decode("utf-8-sig").count("接收方") >= 7


def test_a_bad_page_number_shows_the_first_page(client, small_pages, long_table):
    url = reverse("processors:disclosure-embed", args=[long_table.code])

    assert recipients_on(client.get(f"{url}?page=x").content.decode()) == recipients_on(
        client.get(url).content.decode()
    )
    assert client.get(f"{url}?page=999").status_code == 200


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_a_published_version_is_rendered_once_and_then_served_as_stored(client, long_table, lang):
    services.version_publish(controller=long_table, label="v1", updated_on=DAY, effective_on=DAY)
    url = reverse("processors:disclosure", args=[long_table.code]) + f"?lang={lang}"

    with CaptureQueriesContext(connection) as first_queries:
        first = client.get(url).content.decode()
    with CaptureQueriesContext(connection) as second_queries:
        second = client.get(url).content.decode()

    assert table_part(second) == table_part(first)
    assert lang in PublishedVersion.objects.get().rendered_pages
    # The second request neither reads the snapshot nor writes: the rows are not rendered again.
    assert len(second_queries) < len(first_queries)
    assert not [query for query in second_queries if '."snapshot"' in query["sql"].split(" FROM ")[0]]
    assert not [query for query in second_queries if query["sql"].startswith("UPDATE")]


def test_a_stored_version_does_not_render_its_rows_again(client, long_table, monkeypatch):
    services.version_publish(controller=long_table, label="v1", updated_on=DAY, effective_on=DAY)
    url = reverse("processors:disclosure-embed", args=[long_table.code])
    first = client.get(url).content.decode()

    def refuse(*args, **kwargs):
        raise AssertionError("the stored page was rendered again")

    monkeypatch.setattr(disclosure_page, "disclosure_page_from_snapshot", refuse)
    assert client.get(url).content.decode() == first


def test_a_long_published_version_serves_its_later_pages_rendered_once(client, small_pages, long_table):
    services.version_publish(controller=long_table, label="v1", updated_on=DAY, effective_on=DAY)
    url = reverse("processors:disclosure", args=[long_table.code])

    pages = [client.get(f"{url}?page={number}").content.decode() for number in (1, 2, 3)]
    again = client.get(f"{url}?page=3").content.decode()

    assert [len(recipients_on(html)) for html in pages] == [3, 3, 1]
    assert table_part(again) == table_part(pages[2])
    stored = PublishedVersion.objects.get().rendered_pages["zh"]
    assert stored["pages"] == 3 and list(stored["html"]) == ["1"]


def test_readers_of_the_register_get_processor_links_and_the_public_does_not(admin_user, long_table):
    services.version_publish(controller=long_table, label="v1", updated_on=DAY, effective_on=DAY)
    url = reverse("processors:disclosure", args=[long_table.code])
    reader = Client()
    reader.force_login(admin_user)

    public = Client().get(url).content.decode()
    staff = reader.get(url).content.decode()

    assert "/processors/" not in table_part(public)
    assert "/processors/" in table_part(staff)


def test_the_owner_hears_of_changes_made_after_publishing(admin_client, long_table):
    services.version_publish(controller=long_table, label="v1", updated_on=DAY, effective_on=DAY)
    url = reverse("processors:disclosure", args=[long_table.code])
    assert "notice-owner" not in admin_client.get(url).content.decode()

    make_operation(service=long_table.services.first(), processor=make_processor(name_zh="后加的公司"))

    assert "notice-owner" in admin_client.get(url).content.decode()


def test_the_api_gives_a_versions_rows_a_page_at_a_time(admin_client, long_table, monkeypatch):
    monkeypatch.setattr(report_serializers, "VERSION_ROWS_PER_PAGE", ROWS_A_PAGE)
    version = services.version_publish(controller=long_table, label="v1", updated_on=DAY, effective_on=DAY)
    url = f"/api/v1/versions/{version.pk}/"

    pages = [admin_client.get(f"{url}?rows_page={number}").json() for number in (1, 2, 3)]

    assert [len(page["rows"]) for page in pages] == [3, 3, 1]
    assert {page["rows_pages"] for page in pages} == {3}
    assert len({row["recipient"] for page in pages for row in page["rows"]}) == 7
    assert admin_client.get(f"{url}?rows_page=0").status_code == 400
