"""The API baseline: a bare WSGI app served by the same production server set-up as `rso serve`."""
from __future__ import annotations

import sys


def app(environ, start_response):
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length:
        environ["wsgi.input"].read(length)
    body = b'{"ok": true}'
    start_response("201 Created", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


if __name__ == "__main__":
    from rso.server import default_workers, serve

    serve(lambda: app, host="127.0.0.1", port=int(sys.argv[1]), workers=default_workers(),
          threads=int(sys.argv[2]) if len(sys.argv) > 2 else 4)
