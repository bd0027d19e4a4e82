"""URL configuration: language switching, the admin, the API at /api/v1/ and the browser pages at the root."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    # The site's own sign-in for every role (the admin keeps its staff-only login).
    path("accounts/", include("processors.accounts_urls")),
    # Login for the browsable API; before the API's own catch-all that answers unknown paths with JSON.
    path("api/v1/auth/", include("rest_framework.urls")),
    path("api/v1/", include("processors.api.urls")),
    path("", include("processors.urls")),
]
