import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("processors", "0004_import_shapes"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="ControllerMembership",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "role",
                    models.PositiveSmallIntegerField(
                        choices=[(10, "viewer"), (20, "editor"), (30, "publisher"), (40, "admin")],
                        default=10,
                        verbose_name="role",
                    ),
                ),
                (
                    "controller",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="memberships",
                        to="processors.controller",
                        verbose_name="controller",
                    ),
                ),
                (
                    "group",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="controller_memberships",
                        to="auth.group",
                        verbose_name="group",
                    ),
                ),
                (
                    "user",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="controller_memberships",
                        to=settings.AUTH_USER_MODEL,
                        verbose_name="user",
                    ),
                ),
            ],
            options={
                "verbose_name": "controller membership",
                "verbose_name_plural": "controller memberships",
                "ordering": ["controller__code", "pk"],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("group__isnull", True), ("user__isnull", False))
                        | models.Q(("group__isnull", False), ("user__isnull", True)),
                        name="membership_names_a_user_or_a_group",
                    ),
                    models.UniqueConstraint(fields=("controller", "user"), name="membership_unique_user"),
                    models.UniqueConstraint(fields=("controller", "group"), name="membership_unique_group"),
                ],
            },
        ),
    ]
