"""An SMTP server on 127.0.0.1 (aiosmtpd) for the delivery bench: it keeps
each message's Subject and recipients, one JSON line per message, in the file
given, and runs until it is terminated.

    python smtp_sink.py PORT OUT.jsonl
"""

from __future__ import annotations

import json
import re
import signal
import sys
import threading
from typing import Any

from aiosmtpd.controller import Controller

SUBJECT = re.compile(rb"^Subject: (.*(?:\r?\n[ \t].*)*)", re.M)


class Sink:
    def __init__(self, path: str) -> None:
        self.out = open(path, "a", encoding="utf-8")  # noqa: SIM115 - open for the server's life

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        # the Subject header as sent (a regular expression, not the email parser:
        # the sink must not be what the bench measures)
        found = SUBJECT.search(envelope.content)
        subject = found.group(1).decode("utf-8", "replace") if found else ""
        self.out.write(json.dumps({"subject": subject, "to": envelope.rcpt_tos}) + "\n")
        self.out.flush()
        return "250 OK"


def main() -> None:
    port, path = int(sys.argv[1]), sys.argv[2]
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    server = Controller(Sink(path), hostname="127.0.0.1", port=port)
    server.start()
    print("ready", flush=True)
    done.wait()
    server.stop()


if __name__ == "__main__":
    main()
