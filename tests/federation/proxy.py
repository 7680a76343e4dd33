"""A real TCP proxy on a loopback port, between a node and its peer, that misbehaves.

It reads each HTTP/1.1 request whole, forwards it to the peer on a connection of
its own and hands the answer back, one message per connection (it answers with
``Connection: close``). Each request takes the next fault queued with
:meth:`FaultProxy.then`, or passes unharmed:

- ``drop``: the request never reaches the peer; the connection is closed;
- ``drop-answer``: the peer gets the request and answers, the answer is lost;
- ``delay``: the request waits :attr:`FaultProxy.delay_s` before going on;
- ``corrupt-request`` / ``corrupt-answer``: one byte of the body is flipped;
- ``hold``: the request waits until :meth:`FaultProxy.release`, and says it is
  held by setting :attr:`FaultProxy.held` (the test kills the peer meanwhile);
- ``substitute``: the request never reaches the peer; the one
  :attr:`FaultProxy.substitute` makes from it is sent instead, and its answer handed
  back (an attacker on the path that is a peer too, sending a request of its own);
- ``forge``: the request never reaches the peer; :attr:`FaultProxy.forged`, a whole
  HTTP answer, is handed back in its place (an attacker on the path answering for it).

:meth:`FaultProxy.replay` sends a request the proxy saw to the peer again, byte
for byte, as an attacker on the path would.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tests.e2e.test_server import free_port

Fault = str


async def _read_message(reader: asyncio.StreamReader) -> bytes | None:
    """One HTTP/1.1 message whose body has a Content-Length (or none), or None at EOF."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    body = await reader.readexactly(length) if length else b""
    return head + body


def _closing(message: bytes) -> bytes:
    """``message`` with ``Connection: close``, so each connection carries one message."""
    head, _, body = message.partition(b"\r\n\r\n")
    lines = [line for line in head.split(b"\r\n") if not line.lower().startswith(b"connection:")]
    return b"\r\n".join([*lines, b"Connection: close"]) + b"\r\n\r\n" + body


def _flipped(message: bytes) -> bytes:
    """``message`` with the middle byte of its body flipped (of its head if it has none)."""
    head, _, body = message.partition(b"\r\n\r\n")
    if not body:
        at = len(head) // 2
        return head[:at] + bytes([head[at] ^ 0x01]) + head[at + 1 :] + b"\r\n\r\n"
    at = len(body) // 2
    return head + b"\r\n\r\n" + body[:at] + bytes([body[at] ^ 0x01]) + body[at + 1 :]


class FaultProxy:
    """A proxy on ``127.0.0.1:port`` to the peer on ``127.0.0.1:upstream``."""

    def __init__(self, upstream: int) -> None:
        self.port = free_port()
        self.upstream = upstream
        self.delay_s = 1.0
        self.faults: list[Fault] = []
        self.substitute: Callable[[bytes], bytes] = lambda request: request
        self.forged = b""
        self.seen: list[tuple[Fault, bytes]] = []
        self.held = threading.Event()
        self._release = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def then(self, *faults: Fault) -> None:
        """Apply ``faults``, one per request, to the next requests."""
        self.faults.extend(faults)

    def release(self) -> None:
        self._release.set()

    def replay(self, message: bytes) -> bytes:
        """Send ``message`` to the peer as it is; the peer's raw answer."""
        return asyncio.run_coroutine_threadsafe(self._forward(message), self._loop).result(60)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", self.port)
        )
        self._ready.set()
        self._loop.run_forever()
        server.close()
        self._loop.run_until_complete(server.wait_closed())

    async def _forward(self, message: bytes) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.upstream)
        try:
            writer.write(_closing(message))
            await writer.drain()
            answer = await _read_message(reader)
        finally:
            writer.close()
        if answer is None:
            raise ConnectionError("the peer closed the connection without answering")
        return answer

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await _read_message(reader)
            if request is None:
                return
            fault = self.faults.pop(0) if self.faults else "pass"
            self.seen.append((fault, request))
            if fault == "drop":
                return
            if fault == "forge":
                writer.write(_closing(self.forged))
                await writer.drain()
                return
            if fault == "delay":
                await asyncio.sleep(self.delay_s)
            if fault == "hold":
                self.held.set()
                await asyncio.to_thread(self._release.wait)
            if fault == "corrupt-request":
                request = _flipped(request)
            if fault == "substitute":
                request = self.substitute(request)
            try:
                answer = await self._forward(request)
            except OSError:
                return
            if fault == "drop-answer":
                return
            if fault == "corrupt-answer":
                answer = _flipped(answer)
            writer.write(_closing(answer))
            await writer.drain()
        finally:
            writer.close()


@contextmanager
def fault_proxy(upstream: int) -> Iterator[FaultProxy]:
    """A :class:`FaultProxy` to ``upstream``, running in a thread for the block."""
    proxy = FaultProxy(upstream)
    proxy._thread.start()
    proxy._ready.wait(30)
    try:
        yield proxy
    finally:
        proxy._release.set()
        proxy._loop.call_soon_threadsafe(proxy._loop.stop)
        proxy._thread.join(30)
        proxy._loop.close()
