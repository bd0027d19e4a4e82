"""Third-party apps under the names a reader of the admin sees, in both languages.

django-axes and django-tasks-db name their apps in English only ("Axes", "Tasks Database Backend"),
so the admin's index and sidebar showed those headings untranslated in the Chinese admin.
"""

from axes.apps import AppConfig as AxesAppConfig
from django.utils.translation import gettext_lazy as _
from django_tasks_db.apps import TasksAppConfig


class LoginAttemptsConfig(AxesAppConfig):
    verbose_name = _("login attempts")


class JobQueueConfig(TasksAppConfig):
    verbose_name = _("background jobs")
