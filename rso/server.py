"""The production server: gunicorn with several worker processes (threads in each), or waitress
in one process.

Python runs one thread at a time per process, so on a machine with several cores one process
cannot use them: ``workers`` processes can. Each worker builds its own app (engine, connection
pool, key ring) after the fork: connections and open SQLite handles must never cross a fork.
Waitress serves the single-process case (``workers=1``, the demo) and platforms without fork.
"""
from __future__ import annotations

import os
from collections.abc import Callable

#: gunicorn settings that keep a slow client from holding a worker and log nothing personal
_GUNICORN_DEFAULTS = {
    "worker_class": "gthread",
    "timeout": 120,  # big manifest uploads and PDF batches run as jobs, but a page may take a while
    "graceful_timeout": 30,
    "keepalive": 5,
    "accesslog": None,  # request paths hold case ids only, but the app's audit trail is the record
    "errorlog": "-",
    "proc_name": "rso",
    "limit_request_line": 8190,
}


def default_workers() -> int:
    """One process per core (the app is CPU-bound: sealing, hashing, rendering)."""
    return max(1, os.cpu_count() or 1)


def serve(app_factory: Callable, *, host: str, port: int, workers: int, threads: int) -> None:
    """Serve ``app_factory()``: gunicorn with ``workers`` processes of ``threads`` threads each,
    or waitress in this process when ``workers`` is 1 or fork is unavailable."""
    if workers <= 1 or not hasattr(os, "fork"):
        from waitress import serve as waitress_serve

        waitress_serve(app_factory(), host=host, port=port, threads=threads, ident="rso")
        return
    from gunicorn.app.base import BaseApplication

    class _Server(BaseApplication):
        def load_config(self):
            options = _GUNICORN_DEFAULTS | {"bind": f"{host}:{port}", "workers": workers, "threads": threads}
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self):
            return app_factory()  # called in each worker after the fork (no preloading)

    _Server().run()
