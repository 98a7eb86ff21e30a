"""A small Django project whose scheduled and background jobs run inside the app server (seed 004)."""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("JOBS_VAR", BASE_DIR / "var"))
SECRET_KEY = "example-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["jobs"]
ROOT_URLCONF = "site_tasks.urls"
DATABASES: dict = {}
USE_TZ = True
