"""A minimal Django project with Channels: websocket consumers next to plain views, served by uisge."""

from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "example-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.staticfiles", "channels", "chat"]
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
ROOT_URLCONF = "chatsite.urls"
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True, "DIRS": []}]
DATABASES = {}
STATIC_URL = "static/"
ASGI_APPLICATION = "chatsite.asgi.application"
# One process holds every group with the in-memory layer: keep `processes = 1`, or use channels_redis
# (`BACKEND: channels_redis.core.RedisChannelLayer`) so that several workers and hosts share the groups.
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
