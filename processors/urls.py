"""URLs of the browser pages, mounted at the site root (the admin, /i18n/ and /api/v1/ live beside them)."""

from django.urls import path

from processors import import_flow, views
from processors.disclosure import views as disclosure

app_name = "processors"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("explorer/", views.ExplorerView.as_view(), name="explorer"),
    path("explorer/export/", views.ExplorerExportView.as_view(), name="explorer-export"),
    path("matrix/", views.MatrixView.as_view(), name="matrix"),
    path("flows/", views.FlowView.as_view(), name="flows"),
    path("processors/<int:pk>/", views.ProcessorView.as_view(), name="processor"),
    path("processors/<int:pk>/review/", views.ProcessorReviewView.as_view(), name="processor-review"),
    path("categories/", views.CategoryIndexView.as_view(), name="categories"),
    path("categories/<str:code>/", views.CategoryView.as_view(), name="category"),
    path("disclosure/<slug:code>/", disclosure.DisclosureView.as_view(), name="disclosure"),
    path("disclosure/<slug:code>/embed/", disclosure.disclosure_embed, name="disclosure-embed"),
    path(
        "disclosure/<slug:code>/download/",
        disclosure.DisclosureDownloadView.as_view(),
        name="disclosure-download",
    ),
    path("disclosure/<slug:code>/versions/", disclosure.VersionListView.as_view(), name="versions"),
    path("disclosure/<slug:code>/versions/<str:ref>/", disclosure.DisclosureView.as_view(), name="version"),
    path(
        "disclosure/<slug:code>/versions/<str:ref>/download/",
        disclosure.DisclosureDownloadView.as_view(),
        name="version-download",
    ),
    path("disclosure/<slug:code>/diff/", disclosure.DisclosureDiffView.as_view(), name="diff"),
    path("disclosure/<slug:code>/publish/", disclosure.PublishView.as_view(), name="publish"),
    path(
        "disclosure/<slug:code>/versions/<str:ref>/withdraw/",
        disclosure.WithdrawView.as_view(),
        name="version-withdraw",
    ),
    path("findings/", views.FindingsView.as_view(), name="findings"),
    path("deletion-notice/", views.DeletionNoticeView.as_view(), name="deletion-notice"),
    path("import/", import_flow.ImportUploadView.as_view(), name="import"),
    path("import/done/", import_flow.ImportResultView.as_view(), name="import-result"),
    path("import/jobs/<int:pk>/", import_flow.ImportJobView.as_view(), name="import-job"),
    path("import/jobs/<int:pk>/status/", import_flow.ImportJobStatusView.as_view(), name="import-job-status"),
    path("import/<str:token>/", import_flow.ImportPreviewView.as_view(), name="import-preview"),
    path("import/<str:token>/confirm/", import_flow.ImportConfirmView.as_view(), name="import-confirm"),
    path("import/<str:token>/discard/", import_flow.ImportDiscardView.as_view(), name="import-discard"),
]
