import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "site_tasks.settings")
application = get_wsgi_application()

# The jobs register their @cron and @spool functions when imported. Importing them here, in the
# master, before the workers are forked, is what makes the cron run once per minute for the whole
# instance and lets the spooler find the @spool function.
import jobs.tasks  # noqa: E402,F401
