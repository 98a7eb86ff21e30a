import functools

from uisge.asgi.detect import interface


async def asgi_function(scope, receive, send):
    pass


def wsgi_function(environ, start_response):
    return []


class AsgiClass:
    async def __call__(self, scope, receive, send):
        pass


class WsgiClass:
    def __call__(self, environ, start_response):
        return []


def test_coroutine_functions_and_objects_with_async_call_are_asgi():
    assert interface(asgi_function) == "asgi"
    assert interface(AsgiClass()) == "asgi"
    assert interface(functools.partial(asgi_function)) == "asgi"


def test_plain_callables_and_classes_are_wsgi():
    assert interface(wsgi_function) == "wsgi"
    assert interface(WsgiClass()) == "wsgi"
    assert interface(AsgiClass) == "wsgi"  # a class: calling it builds an instance (ASGI 2), not served


def test_django_and_flask_entry_points(tmp_path, monkeypatch):
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(ROOT_URLCONF=__name__, ALLOWED_HOSTS=["*"])
        django.setup()
    from django.core.handlers.asgi import ASGIHandler
    from django.core.handlers.wsgi import WSGIHandler
    from flask import Flask

    assert interface(ASGIHandler()) == "asgi"
    assert interface(WSGIHandler()) == "wsgi"
    assert interface(Flask("x")) == "wsgi"


urlpatterns: list = []


def test_the_interface_option_overrides_the_check():
    def hidden(scope, receive, send):  # a plain function returning a coroutine: ASGI the check cannot see
        return asgi_function(scope, receive, send)

    assert interface(hidden) == "wsgi" and interface(hidden, "asgi") == "asgi"
    assert interface(asgi_function, "wsgi") == "wsgi" and interface(asgi_function, "auto") == "asgi"
