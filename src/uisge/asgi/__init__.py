"""ASGI 3 apps (issue 16): telling them from WSGI apps, and the connection scope built from the same request
head and environ the WSGI path uses. Pure functions; no I/O here. Not served yet: the worker's asyncio loop
that will run these apps is the next step of issue 16; until then the loader refuses an ASGI app, naming the
WSGI entry point to use instead."""
