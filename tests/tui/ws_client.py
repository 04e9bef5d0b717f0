"""A minimal websocket client (stdlib only), run as another user by the serve tests.

    python3 ws_client.py PORT PATH [--origin O] [--host H] [--hold SECONDS] [--expect TEXT]

Prints one JSON line: the HTTP status of the upgrade, and, when upgraded, how
many bytes of app output arrived and whether TEXT was among them. With
--hold, keeps the connection open that long after TEXT arrived (the test
starts a second client meanwhile). Runs from source text (python3 -c), so
the user running it needs no access to the checkout.
"""

import base64
import json
import os
import socket
import sys
import time


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
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
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
    data = rest
    got = b""
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline and not (want and want in got):
        while len(data) < 2:
            chunk = s.recv(65536)
            if not chunk:
                deadline = 0
                break
            data += chunk
        if len(data) < 2:
            break
        n, i = data[1] & 0x7F, 2
        if n == 126:
            n, i = int.from_bytes(data[2:4], "big"), 4
        elif n == 127:
            n, i = int.from_bytes(data[2:10], "big"), 10
        while len(data) < i + n:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        if data[0] & 0x0F == 8:  # close
            break
        got += data[i : i + n]
        data = data[i + n :]
    out.update(bytes=len(got), seen=bool(want) and want in got)
    print(json.dumps(out), flush=True)
    time.sleep(float(opts.get("--hold", "0")))
    s.close()


if __name__ == "__main__":
    main(sys.argv[1:])
