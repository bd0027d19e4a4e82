"""Settings for the test suite: the real settings, with a throwaway key and fast password hashing."""

import os

# Not a secret: it only signs cookies inside the test run.
os.environ.setdefault("DJANGO_SECRET_KEY", "tests-only-key-not-used-anywhere-else-0123456789abcdef")
# Background jobs run inside the request that starts them; tests/test_jobs.py and the browser import
# start a real worker process (DJANGO_TASK_BACKEND=database) where that is what they test.
os.environ.setdefault("DJANGO_TASK_BACKEND", "immediate")

from registry.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
SECURE_SSL_REDIRECT = False
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405

# Tests serve no collected static files; WhiteNoise would only warn that staticfiles/ is missing.
MIDDLEWARE = [entry for entry in MIDDLEWARE if not entry.startswith("whitenoise.")]  # noqa: F405

# Throttle counts stay inside the test run (conftest clears them) even where the machine sets REDIS_URL.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
