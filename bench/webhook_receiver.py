"""An integrator's webhook receiver for the benchmark: every POST's signature verified with the
`standardwebhooks` package (as docs/webhooks.md shows integrators), then 204; 400 when it does not
verify. aiohttp, one process.

    python -m bench.webhook_receiver --port 8003 --secret whsec_...
"""

from __future__ import annotations

import argparse

from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def receiver_app(secret: str) -> web.Application:
    """The receiver: verifies, counts, answers."""
    verifier = Webhook(secret)
    counts = {"verified": 0, "refused": 0}

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        try:
            verifier.verify(body, dict(request.headers))
        except WebhookVerificationError:
            counts["refused"] += 1
            return web.Response(status=400)
        counts["verified"] += 1
        return web.Response(status=204)

    async def tally(_request: web.Request) -> web.Response:
        return web.json_response(counts)

    app = web.Application()
    app.router.add_get("/tally", tally)
    app.router.add_post("/{tail:.*}", receive)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.webhook_receiver")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8003)
    parser.add_argument("--secret", required=True)
    args = parser.parse_args()
    web.run_app(receiver_app(args.secret), host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
