from django.apps import AppConfig
from django.db import DEFAULT_DB_ALIAS
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class ProcessorsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "processors"
    verbose_name = _("Processor register")

    def ready(self) -> None:
        # Registers the deployment checks (`check --deploy`).
        from processors import checks  # noqa: F401

        # `migrate` alone gives a fresh database the built-in taxonomy, and a test flush reloads it.
        post_migrate.connect(
            load_builtin_taxonomy, sender=self, dispatch_uid="processors.load_builtin_taxonomy"
        )
        # Every history row gets the channel, import and user of the context that caused it.
        from simple_history.signals import pre_create_historical_record

        from processors.history import stamp_historical_record

        pre_create_historical_record.connect(
            stamp_historical_record, dispatch_uid="processors.history.stamp_historical_record"
        )


def load_builtin_taxonomy(sender, *, using=DEFAULT_DB_ALIAS, verbosity=1, apps=None, **kwargs) -> None:
    """Apply the built-in taxonomy fixture once the schema matches the code."""
    from processors.taxonomy import taxonomy_schema_ready, taxonomy_sync

    # One database only; and after `migrate processors <older>` the tables may not fit the models yet.
    if using != DEFAULT_DB_ALIAS or (apps is not None and not taxonomy_schema_ready(apps)):
        return
    taxonomy_sync(stdout=kwargs.get("stdout") if verbosity >= 1 else None)
