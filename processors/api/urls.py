"""URLs of the REST API, mounted at /api/v1/ (the version is the path, so v2 can live beside it)."""

from typing import Any

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import APIRootView, DefaultRouter

from processors.api import reports, views
from processors.api.policy import RegisterPermission, not_found


class RegisterRootView(APIRootView):
    """Processor Registry API, version 1. The schema is at schema/, interactive documentation at docs/."""

    permission_classes = [RegisterPermission]


class RegisterRouter(DefaultRouter):
    """The default router, whose root also links the views that are not viewsets."""

    APIRootView = RegisterRootView
    extra_root_links = {
        "matrix": "matrix",
        "findings": "findings",
        "history": "history",
        "deletion-notices": "deletion-notice",
        "schema": "schema",
        "docs": "docs",
    }

    def get_api_root_view(self, api_urls: Any = None) -> Any:
        list_name = self.routes[0].name
        links = {prefix: list_name.format(basename=basename) for prefix, _viewset, basename in self.registry}
        links.update(self.extra_root_links)
        return self.APIRootView.as_view(api_root_dict=links)


app_name = "api"

router = RegisterRouter()
router.register("controllers", views.ControllerViewSet, basename="controller")
router.register("processors", views.ProcessorViewSet, basename="processor")
router.register("categories", views.DataCategoryViewSet, basename="category")
router.register("purposes", views.PurposeViewSet, basename="purpose")
router.register("actions", views.ProcessingActionViewSet, basename="action")
router.register("services", views.ServiceViewSet, basename="service")
router.register("operations", views.OperationViewSet, basename="operation")
router.register("imports", views.ImportViewSet, basename="import")
router.register("versions", views.PublishedVersionViewSet, basename="version")

urlpatterns = [
    path(
        "processors/<str:pk>/categories/",
        reports.ProcessorCategoriesView.as_view(),
        name="processor-categories",
    ),
    path("matrix/", reports.CategoryMatrixView.as_view(), name="matrix"),
    # Before the router, whose operations/{id}/ would otherwise take "export" for an id.
    path("operations/export/", reports.OperationExportView.as_view(), name="operation-export"),
    path("findings/", reports.FindingsView.as_view(), name="findings"),
    path("history/", reports.HistoryView.as_view(), name="history"),
    path("deletion-notices/", reports.DeletionNoticeView.as_view(), name="deletion-notice"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api:schema"), name="docs"),
    *router.urls,
    # Last: an unknown path ending in a slash answers JSON; one without gets APPEND_SLASH's redirect first.
    re_path(r"^.*/$", not_found),
]
