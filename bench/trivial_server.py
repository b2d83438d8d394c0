"""The cheapest HTTP/1.1 server this machine can run in Python: every request gets 200 `"1"`.

It reads each request's head and skips its body (Content-Length), nothing else, on uvloop. The send
benchmark runs the load generator against it to show the generator's own ceiling.

    python -m bench.trivial_server --port 8002
"""

from __future__ import annotations

import argparse
import asyncio
from typing import cast

RESPONSE = b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 3\r\n\r\n"1"'


class TrivialProtocol(asyncio.Protocol):
    """Answers every whole request in the buffer."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not asyncio.Transport subclasses

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        answers = 0
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                break
            head = bytes(self.buffer[:end]).lower()
            position = head.find(b"\r\ncontent-length:")
            length = 0
            if position >= 0:
                line_end = head.find(b"\r\n", position + 2)
                length = int(head[position + 17 : line_end if line_end >= 0 else len(head)])
            if len(self.buffer) < end + 4 + length:
                break
            del self.buffer[: end + 4 + length]
            answers += 1
        if answers and self.transport is not None:
            self.transport.write(RESPONSE * answers)


async def serve(host: str, port: int) -> None:
    """Serve until killed."""
    server = await asyncio.get_running_loop().create_server(TrivialProtocol, host, port, backlog=1024)
    async with server:
        await server.serve_forever()


def main() -> None:
    """Parse the options and serve."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8002)
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        asyncio.run(serve(args.host, args.port))
    else:
        uvloop.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
