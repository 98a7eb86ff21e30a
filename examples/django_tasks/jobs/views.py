import json
import time

from django.conf import settings
from django.http import JsonResponse

from jobs.tasks import generate_report


def queue_report(request, name):
    task = generate_report.spool(name, requested_at=time.time())  # on disk before this returns
    return JsonResponse({"queued": name, "task": task.decode()}, status=202)


def status(request):
    def read(file):
        path = settings.VAR_DIR / file
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    return JsonResponse({"reports": read("reports.jsonl"), "cron_runs": read("cron.jsonl")})
