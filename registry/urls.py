"""URL configuration: the admin and language switching; the API and browser UI mount here too."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    # Login for the browsable API; before the API's own catch-all that answers unknown paths with JSON.
    path("api/v1/auth/", include("rest_framework.urls")),
    path("api/v1/", include("processors.api_urls")),
]
