"""The ASGI app of bench/run.py's `asgi-hello` scenario: hello world, no framework (lifespan ignored)."""

HELLO = b"Hello World!"
HEADERS = [(b"content-type", b"text/plain"), (b"content-length", b"12")]


async def application(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": HELLO})
