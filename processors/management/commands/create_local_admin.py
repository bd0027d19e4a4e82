"""Create the local administrator account for `make run`, printing its generated password once."""

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create a local superuser with a generated password (printed once) if it does not exist yet."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")
        parser.add_argument("--url", default="http://127.0.0.1:8000/admin/", help="Where to log in.")

    def handle(self, *args, username: str, url: str, **options):
        user_model = get_user_model()
        banner = "=" * 72
        if user_model.objects.filter(username=username).exists():
            self.stdout.write(
                f"{banner}\nLog in at {url} as '{username}' (password printed when the account was created;\n"
                f"reset it with: .venv/bin/python manage.py changepassword {username})\n{banner}"
            )
            return
        password = secrets.token_urlsafe(12)
        user_model.objects.create_superuser(username=username, email="", password=password)
        self.stdout.write(
            self.style.SUCCESS(
                f"{banner}\nLog in at {url}\n  username: {username}\n  password: {password}\n"
                f"This password is shown only once.\n{banner}"
            )
        )
