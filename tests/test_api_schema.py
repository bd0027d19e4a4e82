"""The OpenAPI schema is valid, documents every filter and error, and its docs need no CDN."""

import os

import pytest
from django.core.management import call_command
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

OPERATION_FILTERS = {
    "category",
    "category_all",
    "sensitive",
    "unmapped",
    "cross_border",
    "country",
    "purpose",
    "processor",
    "service",
    "controller",
    "action",
    "relationship",
    "legal_basis",
    "consent_type",
    "transfer_mechanism",
    "status",
    "as_of",
    "search",
    "ordering",
}


@pytest.fixture(scope="module")
def schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def parameters(schema: dict, path: str) -> dict[str, dict]:
    return {parameter["name"]: parameter for parameter in schema["paths"][path]["get"].get("parameters", ())}


def test_the_generated_schema_is_valid_openapi_3(schema):
    validate_schema(schema)
    assert schema["openapi"].startswith("3.")


def test_the_schema_is_served_without_logging_in():
    response = APIClient().get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    assert "/api/v1/operations/" in response.json()["paths"]


@pytest.mark.parametrize(
    "path", ["/api/v1/operations/", "/api/v1/matrix/", "/api/v1/processors/{id}/categories/"]
)
def test_every_operation_filter_is_documented_with_its_meaning(schema, path):
    documented = parameters(schema, path)
    assert set(documented) >= OPERATION_FILTERS
    assert all(documented[name].get("description") for name in OPERATION_FILTERS)


def test_the_category_filter_is_a_repeatable_parameter_explaining_codes_names_and_aliases(schema):
    category = parameters(schema, "/api/v1/operations/")["category"]
    assert category["schema"]["type"] == "array" and category["explode"] is True
    assert "alias" in category["description"] or "别名" in category["description"]


def test_the_processor_list_documents_receives_and_pagination(schema):
    assert {"receives", "country", "kind", "controller", "search", "page", "page_size"} <= set(
        parameters(schema, "/api/v1/processors/")
    )


def test_every_operation_documents_the_shared_error_shape(schema):
    assert "Error" in schema["components"]["schemas"]
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            assert {"400", "401", "403", "404"} <= set(operation["responses"]), (method, path)


def test_the_interactive_docs_are_served_from_our_own_static_files(admin_client):
    html = admin_client.get("/api/v1/docs/").content.decode()
    assert "drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "cdn." not in html and "unpkg" not in html


def test_spectacular_validates_the_schema_without_warnings():
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", os.devnull)


@pytest.mark.parametrize(
    "path, content_types",
    [
        ("/api/v1/operations/export/", {XLSX, "text/csv"}),
        ("/api/v1/versions/{id}/diff/", {"application/json", "text/markdown", XLSX}),
        ("/api/v1/deletion-notices/", {"application/json", "text/csv"}),
    ],
)
def test_downloads_are_documented_as_files(schema, path, content_types):
    assert set(schema["paths"][path]["get"]["responses"]["200"]["content"]) == content_types


def test_the_export_documents_every_operation_filter(schema):
    assert set(parameters(schema, "/api/v1/operations/export/")) >= OPERATION_FILTERS | {
        "format",
        "shape",
        "lang",
    }


@pytest.mark.parametrize(
    "path", ["/api/v1/history/", "/api/v1/processors/{id}/history/", "/api/v1/operations/{id}/history/"]
)
def test_the_history_is_read_only(schema, path):
    assert set(schema["paths"][path]) == {"get"}
