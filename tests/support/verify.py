"""Verifies Stripe-Signature headers with the official Stripe Python library.

Reads JSON lines {"payload": "...", "header": "...", "secret": "..."} on stdin and prints
"ok" or "error: <message>" per line (stripe.Webhook.construct_event, default tolerance 300 s,
against the real clock)."""
import json
import sys

import stripe

for line in sys.stdin:
    if not line.strip():
        continue
    req = json.loads(line)
    try:
        stripe.Webhook.construct_event(req["payload"], req["header"], req["secret"])
        print("ok", flush=True)
    except Exception as exc:  # the library raises SignatureVerificationError or ValueError
        print(f"error: {type(exc).__name__}", flush=True)
