"""vmainspect serve: the page loads in headless Chromium and the TUI session renders in it.

Chromium is driven over the DevTools protocol (aiohttp's websocket client,
installed with textual-serve): the page without its token is refused; the
URL serve prints (with its token) loads the page; wait until textual-serve's page
has received the app's first bytes (body class ``-first-byte``), then take
screenshots until the terminal area is drawn (not blank), within a deadline.
"""

import asyncio
import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import zlib

import pytest

from vmainspect import cli
from vmainspect.commands.serve import session_command
from vmainspect.errors import BadInput

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    for f in (proc.stdout, proc.stderr):
        if f:
            f.close()


def png_pixels(data: bytes):
    """(width, height, rows of RGB(A) bytes) of an 8-bit non-interlaced PNG (what Chromium writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        n = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + n]
        if kind == b"IHDR":
            width, height, depth, ctype = body[0:4], body[4:8], body[8], body[9]
            width, height = int.from_bytes(width, "big"), int.from_bytes(height, "big")
            assert depth == 8 and ctype in (2, 6)
            bpp = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows, prev = [], bytearray(stride)
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, bpp, rows


def colours_in(png: bytes) -> int:
    """How many distinct colours a screenshot has (a blank page has one or two)."""
    _w, _h, bpp, rows = png_pixels(png)
    return len({row[i : i + 3] for row in rows for i in range(0, len(row), bpp)})


async def cdp_check(devtools_port: int, url: str, ready: str, *, drawn: bool, timeout: float = 60.0):
    """Open ``url`` in a new tab and poll until the JavaScript expression ``ready`` is true and,
    with ``drawn``, a screenshot shows the terminal drawn (more than 20 colours): (the body's
    class, a newline and the page's HTML; the last screenshot). The deadline is for a loaded
    machine (Chromium and the served app both starting); the callers assert what was reached."""
    import aiohttp

    async with aiohttp.ClientSession() as http:
        async with http.put(f"http://127.0.0.1:{devtools_port}/json/new?{url}") as r:
            target = json.loads(await r.text())
        async with http.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            ids = iter(range(1, 10**6))

            async def call(method, **params):
                i = next(ids)
                await ws.send_json({"id": i, "method": method, "params": params})
                while True:
                    msg = json.loads((await ws.receive()).data)
                    if msg.get("id") == i:
                        if "error" in msg:
                            raise RuntimeError(msg["error"])
                        return msg["result"]

            async def evaluate(expression: str):
                res = await call("Runtime.evaluate", expression=expression, returnByValue=True)
                return res["result"].get("value")

            async def screenshot() -> bytes:
                clip = {"x": 0, "y": 0, "width": 800, "height": 500, "scale": 0.25}
                return base64.b64decode(
                    (await call("Page.captureScreenshot", format="png", clip=clip))["data"]
                )

            deadline = time.monotonic() + timeout
            while not await evaluate(ready) and time.monotonic() < deadline:
                await asyncio.sleep(0.25)
            shot = await screenshot()
            # the first bytes arrive before the first full frame is painted: poll for it
            while drawn and colours_in(shot) <= 20 and time.monotonic() < deadline:
                await asyncio.sleep(0.25)
                shot = await screenshot()
            cls = await evaluate("document.body ? document.body.className : ''")
            html = await evaluate("document.documentElement.outerHTML")
            return f"{cls}\n{html}", shot


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """A small recording to serve (written by the recorder's own writer)."""
    sys.path.insert(0, os.path.dirname(__file__))
    from test_replay import snapshot

    from vmainspect.recording.io import RecordingWriter

    path = tmp_path_factory.mktemp("serve") / "rec.jsonl"
    w = RecordingWriter.create(str(path))
    w.header(snapshot(0), interval_s=0.5, pages=True, faults=False)
    for k in range(3):
        w.frame(k * 0.5, snapshot(k))
    w.close()
    return str(path)


@pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install chromium; .ci/run does)"
)
def test_served_tui_renders_in_headless_chromium(recording):
    port = free_port()
    serve = subprocess.Popen(
        [sys.executable, "-m", "vmainspect", "serve", "--port", str(port), "open", recording],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    profile = tempfile.mkdtemp(prefix="vmainspect-chromium-")
    chrome = None
    try:
        url = None
        deadline = time.monotonic() + 30
        while url is None and time.monotonic() < deadline:
            line = serve.stdout.readline()
            if not line:
                raise RuntimeError(f"serve exited early: {serve.stderr.read()}")
            m = re.search(r"(http://127\.0\.0\.1:\d+/\?token=\S+)", line)
            url = m.group(1) if m else None
        assert url, "serve printed no URL with its token"
        chrome = subprocess.Popen(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                "--remote-debugging-port=0",
                "--window-size=800,500",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        devtools = None
        deadline = time.monotonic() + 30
        while devtools is None and time.monotonic() < deadline:
            line = chrome.stderr.readline()
            if not line and chrome.poll() is not None:
                break
            m = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
            if m:
                devtools = int(m.group(1))
        assert devtools, "chromium did not start its DevTools endpoint"
        # without the token the page is refused; with it (as printed) the session starts
        refused_text = "refused: missing or wrong token"
        has_refused = f"document.body && document.body.innerText.includes({json.dumps(refused_text)})"
        refused, _ = asyncio.run(cdp_check(devtools, f"http://127.0.0.1:{port}/", has_refused, drawn=False))
        assert refused_text in refused and "xterm-screen" not in refused
        first_byte = "document.body && document.body.classList.contains('-first-byte')"
        html, png = asyncio.run(cdp_check(devtools, url, first_byte, drawn=True))
        # the page is textual-serve's, its terminal exists, and the app's output arrived
        assert "xterm-screen" in html
        assert html.split("\n", 1)[0].count("-first-byte"), "no output from the TUI session reached the page"
        # the terminal is drawn: many distinct colours, not a blank page
        colours = colours_in(png)
        assert colours > 20, f"screenshot looks blank ({colours} colours)"
    finally:
        if chrome is not None:
            stop(chrome)
        stop(serve)
        shutil.rmtree(profile, ignore_errors=True)


def test_session_command():
    assert session_command([])[3:] == ["demo", "--no-save"]
    me = str(os.getpid())
    assert session_command(["--", "attach", me])[3:] == ["attach", me, "--no-save"]
    with pytest.raises(BadInput, match="serve runs one of"):
        session_command(["snapshot", "1"])
    with pytest.raises(BadInput, match="name the snapshot"):
        session_command(["open"])


def test_serve_bad_file_fails_before_listening(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"schema": "vmainspect/recording@7"}\n')
    rc = cli.main(["serve", "--port", str(free_port()), "open", str(bad)])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "@7" in err


def test_serve_port_in_use_is_one_line(recording, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        rc = cli.main(["serve", "--port", str(s.getsockname()[1]), "open", recording])
    err = capsys.readouterr().err
    assert rc == 2 and "cannot listen" in err and err.count("\n") == 1


def test_loopback_detection():
    from vmainspect.commands.serve import _loopback

    assert _loopback("127.0.0.1") and _loopback("::1") and _loopback("localhost") and _loopback("127.1.2.3")
    assert not _loopback("0.0.0.0") and not _loopback("::") and not _loopback("192.168.1.5")
