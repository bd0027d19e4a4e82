# Deletion notice letters: who was sent which notice, and when it was acknowledged.

import django.db.models.deletion
import simple_history.models
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("processors", "0009_versions_withdrawal_and_publicity"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="HistoricalDeletionNoticeLetter",
            fields=[
                (
                    "id",
                    models.BigIntegerField(auto_created=True, blank=True, db_index=True, verbose_name="ID"),
                ),
                (
                    "history_channel",
                    models.CharField(
                        blank=True,
                        choices=[
                            ("admin", "admin"),
                            ("browser", "browser"),
                            ("api", "API"),
                            ("import", "import"),
                            ("command", "management command"),
                            ("system", "system"),
                        ],
                        max_length=20,
                        verbose_name="channel",
                    ),
                ),
                ("history_username", models.CharField(blank=True, max_length=150, verbose_name="user name")),
                ("categories", models.JSONField(default=list, verbose_name="data category codes")),
                ("reply_by", models.DateField(verbose_name="reply by")),
                ("sent_at", models.DateTimeField(blank=True, null=True, verbose_name="sent at")),
                ("sent_by_name", models.CharField(blank=True, max_length=150, verbose_name="sent by (name)")),
                (
                    "acknowledged_at",
                    models.DateTimeField(blank=True, null=True, verbose_name="acknowledged at"),
                ),
                ("note", models.TextField(blank=True, verbose_name="note")),
                ("history_id", models.AutoField(primary_key=True, serialize=False)),
                ("history_date", models.DateTimeField(db_index=True)),
                ("history_change_reason", models.CharField(max_length=100, null=True)),
                (
                    "history_type",
                    models.CharField(
                        choices=[("+", "Created"), ("~", "Changed"), ("-", "Deleted")], max_length=1
                    ),
                ),
                (
                    "controller",
                    models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="processors.controller",
                        verbose_name="controller",
                    ),
                ),
                (
                    "history_import",
                    models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="processors.importrecord",
                        verbose_name="import",
                    ),
                ),
                (
                    "history_user",
                    models.ForeignKey(
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "processor",
                    models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="processors.processor",
                        verbose_name="recipient",
                    ),
                ),
                (
                    "sent_by",
                    models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                        verbose_name="sent by",
                    ),
                ),
            ],
            options={
                "verbose_name": "historical deletion notice letter",
                "verbose_name_plural": "historical deletion notice letters",
                "ordering": ("-history_date", "-history_id"),
                "get_latest_by": ("history_date", "history_id"),
            },
            bases=(simple_history.models.HistoricalChanges, models.Model),
        ),
        migrations.CreateModel(
            name="DeletionNoticeLetter",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("categories", models.JSONField(default=list, verbose_name="data category codes")),
                ("reply_by", models.DateField(verbose_name="reply by")),
                ("sent_at", models.DateTimeField(blank=True, null=True, verbose_name="sent at")),
                ("sent_by_name", models.CharField(blank=True, max_length=150, verbose_name="sent by (name)")),
                (
                    "acknowledged_at",
                    models.DateTimeField(blank=True, null=True, verbose_name="acknowledged at"),
                ),
                ("note", models.TextField(blank=True, verbose_name="note")),
                (
                    "controller",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="deletion_letters",
                        to="processors.controller",
                        verbose_name="controller",
                    ),
                ),
                (
                    "processor",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="deletion_letters",
                        to="processors.processor",
                        verbose_name="recipient",
                    ),
                ),
                (
                    "sent_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                        verbose_name="sent by",
                    ),
                ),
            ],
            options={
                "verbose_name": "deletion notice letter",
                "verbose_name_plural": "deletion notice letters",
                "ordering": ["-sent_at", "-id"],
                "indexes": [
                    models.Index(fields=["processor", "controller"], name="deletion_letter_recipient")
                ],
            },
        ),
    ]
