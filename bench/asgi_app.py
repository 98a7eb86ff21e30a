"""The ASGI app of bench/run.py's `asgi-hello` and `ws-echo` scenarios: hello world over HTTP, and a websocket
that echoes every message; no framework (lifespan ignored)."""

HELLO = b"Hello World!"
HEADERS = [(b"content-type", b"text/plain"), (b"content-length", b"12")]


async def application(scope, receive, send):
    if scope["type"] == "websocket":
        await echo(receive, send)
        return
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": HELLO})


async def echo(receive, send):
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        await send({"type": "websocket.send", "text": message.get("text"), "bytes": message.get("bytes")})
