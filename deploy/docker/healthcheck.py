"""Docker HEALTHCHECK of the gtvision image: exit 0 when this container's process answers.

`gtvision serve` answers GET /healthz on GTV_HTTP_PORT; `run`, `relay` and `retention` answer
GET /metrics on GTV_METRICS_PORT. HEALTHCHECK_URL overrides the URL (one-shot containers such
as `gtvision db upgrade` set no port and are not health-checked by compose).
"""

import os
import sys
import urllib.request


def url() -> str:
    given = os.environ.get("HEALTHCHECK_URL", "")
    if given:
        return given
    metrics = int(os.environ.get("GTV_METRICS_PORT", "0") or 0)
    if metrics > 0:
        return f"http://127.0.0.1:{metrics}/metrics"
    return f"http://127.0.0.1:{int(os.environ.get('GTV_HTTP_PORT', '8080') or 8080)}/healthz"


def main() -> int:
    try:
        with urllib.request.urlopen(url(), timeout=4) as resp:  # noqa: S310 - loopback
            return 0 if resp.status == 200 else 1
    except OSError as err:
        print(f"unhealthy: {url()}: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
