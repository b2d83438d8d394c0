"""Running the app under uvicorn, with HTTP-level refusals in the documented error body.

Requests the HTTP parser itself rejects (a request line beyond its buffer, broken framing) never
reach the application; uvicorn would answer them in plain text. This protocol answers them with
the same JSON body as every other 4xx.
"""

from __future__ import annotations

from typing import Any

import orjson
import uvicorn
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from postventa.api.errors import error_body


class JsonErrorHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol whose parse errors answer with the documented JSON body."""

    def send_400_response(self, msg: str) -> None:
        body = orjson.dumps(error_body(400, "malformed_request", "The HTTP request could not be parsed."))
        content = [STATUS_LINE[400]]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-type: application/json\r\n",
                b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
                b"connection: close\r\n",
                b"\r\n",
                body,
            ]
        )
        self.transport.write(b"".join(content))
        self.transport.close()


def run_server(application: Any, host: str, port: int, log_level: str) -> None:
    """uvicorn without its access log (ours redacts), with our logging configuration."""
    uvicorn.run(
        application,
        host=host,
        port=port,
        http=JsonErrorHttpToolsProtocol,
        access_log=False,
        log_config=None,
        log_level=log_level,
        server_header=False,
    )
