"""Optimistic-concurrency versions on the editable models; user names copied into history rows, import
records and published versions so that "who" survives the user's deletion."""

from django.db import migrations, models


def copy_usernames(apps, schema_editor):
    """Existing rows name their user too (the ones whose user is already gone stay blank)."""
    for model_name in (
        "HistoricalCategoryAlias",
        "HistoricalController",
        "HistoricalDataCategory",
        "HistoricalDataItem",
        "HistoricalOperation",
        "HistoricalProcessingAction",
        "HistoricalProcessor",
        "HistoricalProcessorAlias",
        "HistoricalPurpose",
        "HistoricalPurposeAlias",
        "HistoricalService",
    ):
        model = apps.get_model("processors", model_name)
        for row in model.objects.filter(history_user__isnull=False).select_related("history_user").iterator():
            model.objects.filter(pk=row.pk).update(history_username=row.history_user.username)
    ImportRecord = apps.get_model("processors", "ImportRecord")
    for record in ImportRecord.objects.filter(user__isnull=False).select_related("user").iterator():
        ImportRecord.objects.filter(pk=record.pk).update(username=record.user.username)
    PublishedVersion = apps.get_model("processors", "PublishedVersion")
    for version in PublishedVersion.objects.filter(published_by__isnull=False).select_related("published_by"):
        PublishedVersion.objects.filter(pk=version.pk).update(published_by_name=version.published_by.username)


class Migration(migrations.Migration):
    dependencies = [
        ("processors", "0005_controller_membership"),
    ]

    operations = [
        migrations.AddField(
            model_name="controller",
            name="version",
            field=models.PositiveIntegerField(default=1, editable=False, verbose_name="version"),
        ),
        migrations.AddField(
            model_name="historicalcategoryalias",
            name="history_username",
            field=models.CharField(blank=True, max_length=150, verbose_name="user name"),
        ),
        migrations.AddField(
            model_name="historicalcontroller",
            name="history_username",
            field=models.CharField(blank=True, max_length=150, verbose_name="user name"),
        ),
        migrations.AddField(
            model_name="historicalcontroller",
            name="version",
            field=models.PositiveIntegerField(default=1, editable=False, verbose_name="version"),
        ),
        migrations.AddField(
            model_name="historicaldatacategory",
            name="history_username",
            field=models.CharField(blank=True, max_length=150, verbose_name="user name"),
        ),
        migrations.AddField(
            model_name="historicaldataitem",
            name="history_username",
            field=models.CharField(blank=True, max_length=150, verbose_name="user name"),
        ),
        migrations.AddField(
            model_name="historicaloperation",
            name="history_username",
            field=models.CharField(blank=True, max_length=150, verbose_name="user name"),
        ),
        migrations.AddField(
            model_name="historicaloperation",
            name="version",
            field=models.PositiveIntegerField(default=1, editable=False, verbose_name="version"),
        ),
        migrations.AddField(
            model_name="historicalprocessingaction",
            name="history_username",
            field=models.CharField(blank=True, max_length=150, verbose_name="user name"),
        ),
        migrations.AddField(
            model_name="historicalprocessor",
            name="history_username",
            field=models.CharField(blank=True, max_length=150, verbose_name="user name"),
        ),
        migrations.AddField(
            model_name="historicalprocessor",
            name="version",
            field=models.PositiveIntegerField(default=1, editable=False, verbose_name="version"),
        ),
        migrations.AddField(
            model_name="historicalprocessoralias",
            name="history_username",
            field=models.CharField(blank=True, max_length=150, verbose_name="user name"),
        ),
        migrations.AddField(
            model_name="historicalpurpose",
            name="history_username",
            field=models.CharField(blank=True, max_length=150, verbose_name="user name"),
        ),
        migrations.AddField(
            model_name="historicalpurposealias",
            name="history_username",
            field=models.CharField(blank=True, max_length=150, verbose_name="user name"),
        ),
        migrations.AddField(
            model_name="historicalservice",
            name="history_username",
            field=models.CharField(blank=True, max_length=150, verbose_name="user name"),
        ),
        migrations.AddField(
            model_name="historicalservice",
            name="version",
            field=models.PositiveIntegerField(default=1, editable=False, verbose_name="version"),
        ),
        migrations.AddField(
            model_name="importrecord",
            name="username",
            field=models.CharField(blank=True, max_length=150, verbose_name="user name"),
        ),
        migrations.AddField(
            model_name="operation",
            name="version",
            field=models.PositiveIntegerField(default=1, editable=False, verbose_name="version"),
        ),
        migrations.AddField(
            model_name="processor",
            name="version",
            field=models.PositiveIntegerField(default=1, editable=False, verbose_name="version"),
        ),
        migrations.AddField(
            model_name="publishedversion",
            name="published_by_name",
            field=models.CharField(blank=True, max_length=150, verbose_name="published by (name)"),
        ),
        migrations.AddField(
            model_name="service",
            name="version",
            field=models.PositiveIntegerField(default=1, editable=False, verbose_name="version"),
        ),
        migrations.RunPython(copy_usernames, migrations.RunPython.noop),
    ]
