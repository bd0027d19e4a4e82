"""One category resolver: the filters, the importer, deletion notices and the admin give one answer.

Each example takes a code, a name or an alias of the built-in taxonomy and writes it the way tables and
people do — upper or lower case, full-width or half-width letters, digits and punctuation, ideographic
or ASCII spaces, padding around it — and asks every way into the register which category it means.
"""

import pytest
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from processors import notices
from processors.filters import OperationFilterSet
from processors.models import DataCategory, DataItem, Operation
from processors.selectors import category_subtree_q
from processors.taxonomy import Taxonomy, load_fixture
from tests.builders import make_operation

pytestmark = pytest.mark.django_db

FIXTURE = load_fixture()
NODES = [*FIXTURE["groups"], *FIXTURE["categories"]]
# (text, the code it names) for every code, name and alias of the fixture.
NAMES = [
    (text, node["code"])
    for node in NODES
    for text in (
        node["code"],
        node["zh"],
        node["en"],
        *(alias if isinstance(alias, str) else alias["text"] for alias in node.get("aliases", ())),
    )
]
FULL_WIDTH_OFFSET = 0xFEE0  # U+FF01…U+FF5E are the full-width forms of ASCII ! … ~
IDEOGRAPHIC_SPACE = "\u3000"


@st.composite
def written_variants(draw) -> tuple[str, str]:
    """A name of the taxonomy in random case, width and spacing, with the code it names."""
    text, code = draw(st.sampled_from(NAMES))
    characters = []
    for character in text:
        if character.isascii() and character.isalpha() and draw(st.booleans()):
            character = character.swapcase()
        if "!" <= character <= "~" and draw(st.booleans()):
            character = chr(ord(character) + FULL_WIDTH_OFFSET)
        elif character == " " and draw(st.booleans()):
            character = IDEOGRAPHIC_SPACE
        characters.append(character)
    padding = st.sampled_from(["", " ", IDEOGRAPHIC_SPACE, "\t"])
    return draw(padding) + "".join(characters) + draw(padding), code


@pytest.fixture
def register():
    """One operation sending every leaf category, so each admin filter value selects its own items."""
    return make_operation(data_items=[leaf["zh"] for leaf in FIXTURE["categories"]])


def filterset_category(text: str) -> str:
    filterset = OperationFilterSet({"category": text}, queryset=Operation.objects.all())
    assert filterset.is_valid(), filterset.errors
    [category] = filterset.form.cleaned_data["category"]
    return category.code


def importer_category(taxonomy: Taxonomy, text: str) -> str:
    [code] = taxonomy.map_item(text).category_codes
    return code


def notice_category(text: str) -> str:
    [category] = notices.resolve_categories([text])
    return category.code


def admin_items(client, text: str) -> set[int]:
    response = client.get(reverse("admin:processors_dataitem_changelist"), {"category": text})
    assert response.status_code == 200, response.get("Location")
    return set(response.context["cl"].queryset.values_list("pk", flat=True))


def items_under(code: str) -> set[int]:
    category = DataCategory.objects.get(code=code)
    return set(
        DataItem.objects.filter(category_subtree_q([category], prefix="category__")).values_list(
            "pk", flat=True
        )
    )


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(variant=written_variants())
def test_the_filters_the_importer_the_notices_and_the_admin_resolve_a_variant_alike(
    admin_client, register, variant
):
    text, code = variant
    taxonomy = Taxonomy.load()

    assert filterset_category(text) == code
    assert importer_category(taxonomy, text) == code
    assert notice_category(text) == code
    assert admin_items(admin_client, text) == items_under(code)


def test_the_api_filter_resolves_a_full_width_name_as_the_importer_maps_it(api_client):
    sms = make_operation(data_items=["手机号"])
    make_operation(data_items=["邮箱"])
    text = "Ｐｈｏｎｅ\u3000ｎｕｍｂｅｒ"  # "Phone number", as a full-width table writes it

    response = api_client.get("/api/v1/operations/", {"category": text})

    assert Taxonomy.load().map_item(text).category_codes == ("basic.phone_number",)
    assert response.status_code == 200, response.content[:300]
    assert [row["id"] for row in response.json()["results"]] == [sms.pk]


def test_an_unknown_category_is_unknown_everywhere_with_the_same_suggestions(admin_client):
    text = "身份正号"
    filterset = OperationFilterSet({"category": text}, queryset=Operation.objects.all())

    with pytest.raises(notices.NoticeError) as notice_error:
        notices.resolve_categories([text])

    assert not filterset.is_valid()
    suggestions = notice_error.value.suggestions[text]
    assert suggestions == Taxonomy.load().suggest_categories(text)
    assert all(suggestion in str(filterset.errors["category"]) for suggestion in suggestions)
    response = admin_client.get(reverse("admin:processors_dataitem_changelist"), {"category": text})
    assert response.status_code == 302 and "e=1" in response["Location"]
