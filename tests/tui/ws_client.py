"""A minimal websocket client (stdlib only), run as another user by the serve tests.

    python3 ws_client.py PORT PATH [--origin O] [--host H] [--hold SECONDS] [--expect TEXT]

Prints one JSON line: the HTTP status of the upgrade, and, when upgraded, how
many bytes of app output arrived and whether TEXT was among them. With
--hold, keeps the connection open that long after TEXT arrived (the test
starts a second client meanwhile). Runs from source text (python3 -c), so
the user running it needs no access to the checkout.

It answers the server's pings, as every websocket client must (RFC 6455,
5.5.2): the server (aiohttp, heartbeat=15) closes a connection whose pong has
not come 7.5 s after a ping, so a client that stayed silent would lose its
session about 22 s after the upgrade, sooner than a slow machine takes to
start the app and run the test's next steps.
"""

import base64
import json
import os
import socket
import sys
import time

PING, PONG, CLOSE = 0x9, 0xA, 0x8


class Conn:
    def __init__(self, s: socket.socket, data: bytes) -> None:
        self.s, self.data = s, data
        self.eof = False  # the server closed the connection

    def _fill(self, n: int, deadline: float) -> bool:
        """At least ``n`` bytes buffered (False: the connection closed or the deadline passed)."""
        while len(self.data) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.s.settimeout(left)
            try:
                chunk = self.s.recv(65536)
            except TimeoutError:
                return False
            if not chunk:
                self.eof = True
                return False
            self.data += chunk
        return True

    def frame(self, deadline: float):
        """The next frame, (opcode, payload), or None (closed, or nothing before the deadline)."""
        if not self._fill(2, deadline):
            return None
        n, i = self.data[1] & 0x7F, 2
        if n == 126:
            if not self._fill(4, deadline):
                return None
            n, i = int.from_bytes(self.data[2:4], "big"), 4
        elif n == 127:
            if not self._fill(10, deadline):
                return None
            n, i = int.from_bytes(self.data[2:10], "big"), 10
        if not self._fill(i + n, deadline):
            return None
        op, payload = self.data[0] & 0x0F, self.data[i : i + n]
        self.data = self.data[i + n :]
        if op == PING:  # a client's frames are masked (RFC 6455, 5.3); payloads of pings are < 126 bytes
            mask = os.urandom(4)
            masked = bytes(b ^ mask[k % 4] for k, b in enumerate(payload))
            self.s.sendall(bytes([0x80 | PONG, 0x80 | len(payload)]) + mask + masked)
        return op, payload


def main(argv):
    port, path = int(argv[0]), argv[1]
    opts = dict(zip(argv[2::2], argv[3::2]))
    host = opts.get("--host", f"127.0.0.1:{port}")
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: " + base64.b64encode(os.urandom(16)).decode(),
        "Sec-WebSocket-Version: 13",
    ]
    if "--origin" in opts:
        lines.append(f"Origin: {opts['--origin']}")
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(4096)
        if not chunk:
            break
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
    out = {"status": status, "bytes": 0, "seen": False}
    if status != 101:
        print(json.dumps(out), flush=True)
        return
    want = opts.get("--expect", "").encode()
    conn = Conn(s, rest)
    got = b""
    # a deadline for a slow machine to start the app and draw it, not a measurement
    deadline = time.monotonic() + 60
    closed = False
    while want and want not in got:
        f = conn.frame(deadline)
        if f is None or f[0] == CLOSE:
            closed = conn.eof or f is not None
            break
        if f[0] not in (PING, PONG):
            got += f[1]
    out.update(bytes=len(got), seen=bool(want) and want in got)
    print(json.dumps(out), flush=True)
    # hold the session open (answering pings) until the time is up or the server closes it
    hold_until = time.monotonic() + float(opts.get("--hold", "0"))
    while not closed and time.monotonic() < hold_until:
        f = conn.frame(hold_until)
        closed = conn.eof or (f is not None and f[0] == CLOSE)
    s.close()


if __name__ == "__main__":
    main(sys.argv[1:])
