"""A bounded HTTP load generator (loopback only): N client threads with keep-alive."""
from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable


def run_load(port: int, *, path: str, body_for: Callable[[int], dict], headers: dict, clients: int,
             requests: int, timeout_s: float = 120, expect: int = 201) -> dict:
    """Send ``requests`` POSTs from ``clients`` threads to 127.0.0.1:port; returns throughput
    and latency percentiles, and how many answers were not ``expect``."""
    latencies: list[float] = []
    errors: list[int] = []
    counter = iter(range(requests))
    lock = threading.Lock()
    deadline = time.monotonic() + timeout_s

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.monotonic() < deadline:
            with lock:
                i = next(counter, None)
            if i is None:
                break
            payload = json.dumps(body_for(i), default=str)
            t0 = time.perf_counter()
            try:
                conn.request("POST", path, body=payload, headers={**headers, "Content-Type": "application/json"})
                resp = conn.getresponse()
                resp.read()
                status = resp.status
            except OSError:  # a dropped connection counts as an error; reconnect and go on
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                status = 0
            elapsed = time.perf_counter() - t0
            with lock:
                latencies.append(elapsed)
                if status != expect:
                    errors.append(status)
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    ordered = sorted(latencies)
    return {
        "requests": len(latencies),
        "rps": len(latencies) / wall if wall else 0.0,
        "median_ms": ordered[len(ordered) // 2] * 1000 if ordered else 0.0,
        "p95_ms": ordered[int(0.95 * (len(ordered) - 1))] * 1000 if ordered else 0.0,
        "errors": len(errors),
        "error_statuses": sorted(set(errors))[:5],
    }


def wait_for_port(port: int, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/")
            conn.getresponse().read()
            conn.close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
