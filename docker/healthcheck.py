"""Container health probes that need nothing but the Python in the image (no curl).

    python docker/healthcheck.py http URL
        Healthy when URL answers 2xx; otherwise prints the status and body (the
        readiness probe names the failing check) or the connection error.

    python docker/healthcheck.py beat-schedule PATH [MAX_AGE_SECONDS]
        Healthy when celery beat's schedule file (PATH, plus whatever suffix the
        dbm backend adds) was written within MAX_AGE_SECONDS (default 600). Beat
        rewrites it on its first tick and then every 3 minutes while its loop
        runs, so a stale file means beat is stuck or gone.

Exit status 0 is healthy, 1 is unhealthy, 2 is a usage error. Stdlib only: it
must run before, and without, Django.
"""

from __future__ import annotations

import glob
import os
import sys
import time
import urllib.error
import urllib.request

DEFAULT_BEAT_MAX_AGE = 600


def probe_http(url: str, *, timeout: float = 5.0) -> int:
    if not url.startswith(("http://", "https://")):
        print(f"not an http(s) URL: {url}")
        return 2
    try:
        # The scheme is checked above; the URL comes from the image's own configuration.
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310
            return 0 if 200 <= response.status < 300 else 1
    except urllib.error.HTTPError as exc:
        print(f"{url}: HTTP {exc.code} {exc.read(2000).decode('utf-8', 'replace')}")
        return 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"{url}: {exc}")
        return 1


def probe_beat_schedule(path: str, *, max_age: float = DEFAULT_BEAT_MAX_AGE) -> int:
    files = glob.glob(glob.escape(path) + "*")
    if not files:
        print(f"no beat schedule file at {path}")
        return 1
    age = time.time() - max(os.stat(name).st_mtime for name in files)
    if age > max_age:
        print(f"beat schedule {path} last written {age:.0f}s ago (limit {max_age:.0f}s)")
        return 1
    return 0


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "http":
        return probe_http(argv[1])
    if len(argv) in (2, 3) and argv[0] == "beat-schedule":
        try:
            max_age = float(argv[2]) if len(argv) == 3 else DEFAULT_BEAT_MAX_AGE
        except ValueError:
            print(f"MAX_AGE_SECONDS must be a number, got {argv[2]!r}")
            return 2
        return probe_beat_schedule(argv[1], max_age=max_age)
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
