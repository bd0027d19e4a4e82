"""URLs of the REST API, mounted at /api/v1/ (the version is the path, so v2 can live beside it)."""

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from processors import api

app_name = "api"

router = api.RegisterRouter()
router.register("controllers", api.ControllerViewSet, basename="controller")
router.register("processors", api.ProcessorViewSet, basename="processor")
router.register("categories", api.DataCategoryViewSet, basename="category")
router.register("purposes", api.PurposeViewSet, basename="purpose")
router.register("actions", api.ProcessingActionViewSet, basename="action")
router.register("services", api.ServiceViewSet, basename="service")
router.register("operations", api.OperationViewSet, basename="operation")
router.register("imports", api.ImportViewSet, basename="import")
router.register("versions", api.PublishedVersionViewSet, basename="version")

urlpatterns = [
    path(
        "processors/<str:pk>/categories/", api.ProcessorCategoriesView.as_view(), name="processor-categories"
    ),
    path("matrix/", api.CategoryMatrixView.as_view(), name="matrix"),
    # Before the router, whose operations/{id}/ would otherwise take "export" for an id.
    path("operations/export/", api.OperationExportView.as_view(), name="operation-export"),
    path("findings/", api.FindingsView.as_view(), name="findings"),
    path("history/", api.HistoryView.as_view(), name="history"),
    path("deletion-notices/", api.DeletionNoticeView.as_view(), name="deletion-notice"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    *router.urls,
    # Last: an unknown path ending in a slash answers JSON; one without gets APPEND_SLASH's redirect first.
    re_path(r"^.*/$", api.not_found),
]
