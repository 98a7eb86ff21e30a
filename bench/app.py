"""The app every server runs in bench/run.py: hello world, a 64 KiB body, and a POST echo.

Plain WSGI with no framework, so the figures measure the servers and nothing else.
"""

HELLO = b"Hello World!"
BIG = b"x" * 65536


def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/64k":
        body = BIG
    elif path == "/echo":
        body = environ["wsgi.input"].read()
    else:
        body = HELLO
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
