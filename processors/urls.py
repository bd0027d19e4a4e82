"""URLs of the browser pages, mounted at the site root (the admin, /i18n/ and /api/v1/ live beside them)."""

from django.urls import path

from processors import views

app_name = "processors"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("explorer/", views.ExplorerView.as_view(), name="explorer"),
    path("explorer/export/", views.ExplorerExportView.as_view(), name="explorer-export"),
    path("matrix/", views.MatrixView.as_view(), name="matrix"),
    path("processors/<int:pk>/", views.ProcessorView.as_view(), name="processor"),
    path("categories/", views.CategoryIndexView.as_view(), name="categories"),
    path("categories/<str:code>/", views.CategoryView.as_view(), name="category"),
    path("disclosure/<slug:code>/", views.DisclosureView.as_view(), name="disclosure"),
    path("disclosure/<slug:code>/embed/", views.disclosure_embed, name="disclosure-embed"),
    path(
        "disclosure/<slug:code>/download/", views.DisclosureDownloadView.as_view(), name="disclosure-download"
    ),
    path("disclosure/<slug:code>/versions/", views.VersionListView.as_view(), name="versions"),
    path("disclosure/<slug:code>/versions/<str:ref>/", views.DisclosureView.as_view(), name="version"),
    path(
        "disclosure/<slug:code>/versions/<str:ref>/download/",
        views.DisclosureDownloadView.as_view(),
        name="version-download",
    ),
    path("disclosure/<slug:code>/diff/", views.DisclosureDiffView.as_view(), name="diff"),
    path("findings/", views.FindingsView.as_view(), name="findings"),
    path("deletion-notice/", views.DeletionNoticeView.as_view(), name="deletion-notice"),
    path("import/", views.ImportUploadView.as_view(), name="import"),
    path("import/done/", views.ImportResultView.as_view(), name="import-result"),
    path("import/<str:token>/", views.ImportPreviewView.as_view(), name="import-preview"),
    path("import/<str:token>/confirm/", views.ImportConfirmView.as_view(), name="import-confirm"),
    path("import/<str:token>/discard/", views.ImportDiscardView.as_view(), name="import-discard"),
]
