"""gunicorn settings for production serving: ``gunicorn -c gunicorn.conf.py wsgi:application``.

Every value can be overridden from the environment (HOST, PORT, WEB_WORKERS, WEB_THREADS).
"""

import multiprocessing
import os
import sys

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8050')}"
# Each worker keeps its own read-only DuckDB connections per thread; DuckDB scans with its own
# threads too, so a worker per core and a few threads each keep the CPU busy without thrashing.
workers = int(os.environ.get("WEB_WORKERS", max(2, multiprocessing.cpu_count())))
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "8"))
timeout = 120  # the meeting pack renders images server-side
graceful_timeout = 30
keepalive = 5
# request size limits: the request line and headers (bodies are capped by the app at 1 MB)
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190
accesslog = os.environ.get("WEB_ACCESS_LOG", "-")
# the path without its query: a wall token or a filter never lands in the access log
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s "-" "%(a)s"'
errorlog = "-"
loglevel = os.environ.get("WEB_LOG_LEVEL", "info")
proc_name = "cur-heatmap"
# gunicorn's control socket defaults to one path per user: two instances on a machine would take it
# from each other, and nothing here uses it
control_socket_disable = True


def on_starting(server) -> None:
    """Check the settings in the master before it forks: a wrong one ends the server at once (exit 2)
    instead of workers failing and restarting forever behind an open port."""
    from auth.startup import EXIT_BAD_SETTINGS, problems

    found = problems()
    if found:
        print("ЦУР Heatmap: " + found[0], file=sys.stderr, flush=True)
        os._exit(EXIT_BAD_SETTINGS)  # SystemExit would be caught and logged as a traceback by gunicorn
