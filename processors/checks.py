"""System checks of the deployment: what `manage.py check --deploy` says beyond Django's own."""

from django.conf import settings
from django.core.checks import CheckMessage, Tags, Warning, register

# Caches whose counts live in one process: each gunicorn worker would throttle on its own.
PER_PROCESS_CACHES = frozenset(
    {
        "django.core.cache.backends.locmem.LocMemCache",
        "django.core.cache.backends.dummy.DummyCache",
    }
)


def counters_in_cache() -> list[str]:
    """What counts requests in the default cache: the API throttles, and django-axes on a cache handler."""
    users = []
    if settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES"):
        users.append("API throttles")
    handler = getattr(settings, "AXES_HANDLER", "")
    if "cache" in handler.lower() and getattr(settings, "AXES_CACHE", "default") == "default":
        users.append("django-axes")
    return users


@register(Tags.security, Tags.caches, deploy=True)
def check_rate_limits_share_a_cache(app_configs=None, **kwargs) -> list[CheckMessage]:
    """Warn when rate limits count in a per-process cache, so that N workers allow N times the rate."""
    backend = settings.CACHES.get("default", {}).get("BACKEND", "")
    users = counters_in_cache()
    if backend not in PER_PROCESS_CACHES or not users:
        return []
    return [
        Warning(
            f"{' and '.join(users)} count in a per-process cache ({backend.rsplit('.', 1)[-1]}): "
            "with several workers each one counts on its own and the limits are multiplied.",
            hint="Set REDIS_URL (e.g. redis://localhost:6379/0) so that every worker shares one cache.",
            id="processors.W001",
        )
    ]
