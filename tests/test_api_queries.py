"""The API's query count does not grow with the rows returned or the categories per row.

Each endpoint is pinned to an exact count on a bulk-created register of 1,010 operations (1-4 data
items, a purpose and two actions each), and answers 10 and 1,000 rows with the same count. The client
is force-authenticated as a superuser, so no query goes to sessions or permissions.
"""

import pytest

from bench.api_bench import generate_register

pytestmark = pytest.mark.django_db

OPERATIONS = 1_010


@pytest.fixture
def big_register():
    return generate_register(OPERATIONS)


def rows(response) -> list[dict]:
    assert response.status_code == 200, response.content[:300]
    return response.json()["results"]


@pytest.mark.parametrize("page_size", [10, 1000])
def test_the_operation_list_takes_five_queries(
    api_client, big_register, django_assert_num_queries, page_size
):
    # count, page (with service, controller and processor joined), data items, purposes, actions
    with django_assert_num_queries(5):
        assert len(rows(api_client.get(f"/api/v1/operations/?page_size={page_size}"))) == page_size


@pytest.mark.parametrize("page_size", [10, 1000])
def test_the_operation_list_by_category_takes_six_queries(
    api_client, big_register, django_assert_num_queries, page_size
):
    # the five above, and one to resolve the category
    with django_assert_num_queries(6):
        found = rows(api_client.get(f"/api/v1/operations/?category=basic&page_size={page_size}"))
    assert len(found) == page_size


@pytest.mark.parametrize("page_size", [10, 1000])
def test_combined_filters_add_only_their_own_lookups(
    api_client, big_register, django_assert_num_queries, page_size
):
    # the five, one for all the category values together and one for the purpose
    filters = "category=basic&category=手机号&sensitive=false&purpose=实名认证"
    url = f"/api/v1/operations/?{filters}&page_size={page_size}"
    with django_assert_num_queries(7):
        assert rows(api_client.get(url))


@pytest.mark.parametrize("page_size", [10, 1000])
def test_processors_receiving_a_category_take_five_queries(api_client, django_assert_num_queries, page_size):
    # resolve the category, count, page (with the group joined), aliases, and one for every row's `via`
    generate_register(OPERATIONS, processors=OPERATIONS)
    with django_assert_num_queries(5):
        found = rows(api_client.get(f"/api/v1/processors/?receives=姓名&page_size={page_size}"))
    assert len(found) == page_size and all(row["via"] for row in found)


@pytest.mark.parametrize("size", [10, OPERATIONS])
def test_a_processors_categories_take_three_queries(api_client, django_assert_num_queries, size):
    # the processor, its (and its group's) data items with operation, service and controller, the purposes
    register = generate_register(size)
    busiest = max(register["processors"], key=lambda processor: processor.operations.count())
    with django_assert_num_queries(3):
        response = api_client.get(f"/api/v1/processors/{busiest.pk}/categories/")
    assert response.status_code == 200 and response.json()["categories"]


@pytest.mark.parametrize("page_size", [10, 1000])
def test_the_category_list_takes_three_queries(api_client, django_assert_num_queries, page_size):
    # count, page, aliases
    with django_assert_num_queries(3):
        assert rows(api_client.get(f"/api/v1/categories/?page_size={page_size}"))


@pytest.mark.parametrize("size", [10, OPERATIONS])
def test_the_matrix_takes_two_aggregate_queries(api_client, django_assert_num_queries, size):
    # the processors' count and page, the cells grouped by processor and category, and the operations
    # per processor
    generate_register(size)
    with django_assert_num_queries(4):
        body = api_client.get("/api/v1/matrix/").json()
    assert body["cells"] and body["rows"]


@pytest.mark.parametrize("size", [10, OPERATIONS])
def test_the_filtered_matrix_adds_only_the_category_lookup(api_client, django_assert_num_queries, size):
    generate_register(size)
    with django_assert_num_queries(5):
        assert api_client.get("/api/v1/matrix/?category=basic").json()["columns"]
