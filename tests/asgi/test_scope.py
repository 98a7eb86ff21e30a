from uisge.asgi.scope import http_scope
from uisge.protocol.events import RequestHead
from uisge.wsgi.environ import base_environ, http_environ


def test_http_scope_from_a_head_keeps_raw_headers_and_decodes_the_path_as_utf8():
    head = RequestHead("http", b"POST", b"/caf%C3%A9//x/../y?a=1&b=%20", "HTTP/1.1",
                       [(b"Host", b"example.org"), (b"X-Dup", b"1"), (b"X-Dup", b"2")], True, 0, 100, 3)
    env = http_environ(base_environ("0.0.0.0", "8000", False, False, None), "10.0.0.9", "5555", head, False, False)
    scope = http_scope(env, head.headers, state={"db": "pool"})
    assert scope["type"] == "http" and scope["asgi"]["version"] == "3.0" and scope["http_version"] == "1.1"
    assert scope["method"] == "POST" and scope["scheme"] == "http"
    assert scope["path"] == "/café//y"  # percent-decoded, repeated slashes kept, dot-segments resolved
    assert scope["raw_path"] == b"/caf%C3%A9//x/../y" and scope["query_string"] == b"a=1&b=%20"
    assert scope["headers"] == [(b"host", b"example.org"), (b"x-dup", b"1"), (b"x-dup", b"2")]
    assert scope["client"] == ("10.0.0.9", 5555) and scope["server"] == ("0.0.0.0", 8000)
    assert scope["root_path"] == "" and scope["state"] == {"db": "pool"}


def test_uwsgi_scope_takes_headers_from_the_vars():
    env = {"REQUEST_METHOD": "GET", "REQUEST_URI": "/app/x?q=1", "PATH_INFO": "/x", "SCRIPT_NAME": "/app",
           "QUERY_STRING": "q=1", "SERVER_PROTOCOL": "HTTP/1.0", "CONTENT_TYPE": "text/plain",
           "HTTP_HOST": "h", "HTTP_X_REAL_IP": "1.2.3.4", "REMOTE_ADDR": "1.2.3.4", "REMOTE_PORT": "",
           "SERVER_NAME": "h", "SERVER_PORT": "80", "wsgi.url_scheme": "https"}
    scope = http_scope(env, None)
    assert scope["http_version"] == "1.0" and scope["scheme"] == "https" and scope["root_path"] == "/app"
    assert scope["raw_path"] == b"/app/x" and scope["path"] == "/app/x" and scope["client"] == ("1.2.3.4", 0)
    assert sorted(scope["headers"]) == [(b"content-type", b"text/plain"), (b"host", b"h"), (b"x-real-ip", b"1.2.3.4")]
    assert "state" not in scope


def test_websocket_scope_has_no_method_and_offers_the_denial_extension():
    from uisge.asgi.scope import websocket_scope

    head = RequestHead("http", b"GET", b"/chat?room=1", "HTTP/1.1", [(b"Host", b"h"), (b"Upgrade", b"websocket")],
                       False, 0, 60, 2)
    env = http_environ(base_environ("0.0.0.0", "8000", False, False, None), "10.0.0.9", "5555", head, False, False)
    scope = websocket_scope(env, head.headers, {"db": 1}, ["chat", "v2"])
    assert scope["type"] == "websocket" and scope["scheme"] == "ws" and "method" not in scope
    assert scope["path"] == "/chat" and scope["query_string"] == b"room=1" and scope["subprotocols"] == ["chat", "v2"]
    assert scope["extensions"] == {"websocket.http.response": {}} and scope["state"] == {"db": 1}
    env["wsgi.url_scheme"] = "https"
    assert websocket_scope(env, head.headers, None, [])["scheme"] == "wss"
