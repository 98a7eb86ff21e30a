"""uisge: a uWSGI-compatible application server for Python WSGI apps.

This file only names the package version; importing it must stay free of side effects.
"""

__version__ = "0.1.0"
