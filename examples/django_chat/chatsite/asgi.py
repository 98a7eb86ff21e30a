"""HTTP goes to Django's views, websockets to the chat consumer: Channels' router, one ASGI app for uisge."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
django_asgi_app = get_asgi_application()  # before importing consumers: it sets Django up

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from chat.consumers import ChatConsumer  # noqa: E402

application = ProtocolTypeRouter({
    "http": django_asgi_app,
    "websocket": URLRouter([path("ws/chat/<str:room>/", ChatConsumer.as_asgi())]),
})
