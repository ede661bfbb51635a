"""The peer of the delivery bench: Apprise's own notify(), one call per
message (its SMTP plugin opens a connection for each), to the bench's SMTP
server. Prints {"seconds": s, "messages": n}.

    python peer_apprise.py PORT COUNT
"""

from __future__ import annotations

import json
import sys
import time

import apprise


def main() -> None:
    port, count = int(sys.argv[1]), int(sys.argv[2])
    url = f"mailto://127.0.0.1:{port}?from=flowctl@example.com&to=carol@example.com"
    start = time.perf_counter()
    for i in range(count):
        # a new plugin object each time: one object throttles itself between sends
        if not apprise.Apprise.instantiate(url).notify(body=f"peer message {i}",
                                                       title=f"peer-{i}: overdue"):
            raise SystemExit(f"peer: message {i} was not accepted")
    print(json.dumps({"seconds": time.perf_counter() - start, "messages": count}))


if __name__ == "__main__":
    main()
