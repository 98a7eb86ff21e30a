"""The demo app: a plain WSGI callable, no framework."""


def application(environ, start_response):
    body = b"Hello from uisge!\n"
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))])
    return [body]
