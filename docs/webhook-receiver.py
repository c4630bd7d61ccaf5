#!/usr/bin/env python3
"""An example receiver of Switchboard's outbound webhooks, with nothing but Python's standard library.

    SWITCHBOARD_WEBHOOK_SECRET=whsec_... python3 docs/webhook-receiver.py 9000

then add http://127.0.0.1:9000/ as an endpoint (a local Switchboard allows http:// and private
addresses). It checks each delivery the way the Standard Webhooks specification says, drops a
`webhook-id` it has already handled (a retry or a replay), and answers 200 quickly: do slow work
elsewhere, an answer after 10 s counts as a failure and is retried. In production prefer the
specification's library (`pip install standardwebhooks`), which does the same checks.
"""

import base64
import hashlib
import hmac
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

TOLERANCE_SECONDS = 5 * 60
SECRET = os.environ["SWITCHBOARD_WEBHOOK_SECRET"]
KEY = base64.b64decode(SECRET.removeprefix("whsec_"))
seen = set()  # keep these in your database in a real receiver


def genuine(webhook_id: str, timestamp: str, body: bytes, signatures: str) -> bool:
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > TOLERANCE_SECONDS:
        return False  # too old or from the future: a replayed capture
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(KEY, signed, hashlib.sha256).digest()).decode()
    # During a secret rotation two signatures come, space-separated: one match is enough.
    return any(
        hmac.compare_digest(expected, part.split(",", 1)[1])
        for part in signatures.split()
        if part.startswith("v1,")
    )


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        webhook_id = self.headers.get("webhook-id", "")
        if not genuine(webhook_id, self.headers.get("webhook-timestamp", ""), body,
                       self.headers.get("webhook-signature", "")):
            self.send_response(401)
            self.end_headers()
            return
        if webhook_id not in seen:
            seen.add(webhook_id)
            event = json.loads(body)
            data = event["data"]
            # `sequence` orders one user's events whatever order they arrive in.
            print(event["sequence"], event["type"], data.get("id"), data.get("status"), flush=True)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 9000
    HTTPServer(("127.0.0.1", port), Receiver).serve_forever()
