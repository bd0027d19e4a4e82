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

urlpatterns = [
    path(
        "processors/<str:pk>/categories/", api.ProcessorCategoriesView.as_view(), name="processor-categories"
    ),
    path("matrix/", api.CategoryMatrixView.as_view(), name="matrix"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    *router.urls,
    # Last: an unknown path ending in a slash answers JSON; one without gets APPEND_SLASH's redirect first.
    re_path(r"^.*/$", api.not_found),
]
