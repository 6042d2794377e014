"""``gtvision serve`` for the console's browser tests: the real command, ICE on loopback.

aioice leaves 127.0.0.1 out of its host candidates; tests keep WebRTC on loopback (no other
address may be used), so this launcher makes it offer only 127.0.0.1 — what
``tests/web/test_live.py`` does in-process — then runs ``gtvision serve`` with the given
arguments. ``PYTHONMALLOC`` must be set by the caller (``serve`` re-executes itself otherwise).
"""

from __future__ import annotations

import sys

import aioice.ice

from gtvision.cli import main

aioice.ice.get_host_addresses = lambda **_: ["127.0.0.1"]  # type: ignore[assignment]

if __name__ == "__main__":
    sys.exit(main(["serve", *sys.argv[1:]]))
