from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ProcessorsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "processors"
    verbose_name = _("Processor register")
