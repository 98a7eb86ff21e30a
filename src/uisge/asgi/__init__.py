"""ASGI 3 apps (issue 16): telling them from WSGI apps (detect.py), the connection scope built from the same
request head and environ the WSGI path uses (scope.py), lifespan once per worker (lifespan.py), and the runner
that runs each request as a task on the worker's asyncio loop (runner.py; the loop is worker/aloop.py),
websockets (websocket.py, on `http`/`http-socket` listeners) and harakiri for ASGI requests (harakiri.py).
HTTP over `http`/`http-socket` and the uwsgi protocol."""
