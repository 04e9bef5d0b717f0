"""serve's guard, from an unprivileged client: token, Host, Origin, session limit, target checks.

The server runs as the test's user (root in CI) and serves `attach PID` of a
process that user owns; the client is a stdlib websocket client run as
`nobody` (when the test runs as root), so the refusals below are what a
stranger on the machine gets.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request

import psutil
import pytest

from vmainspect import cli
from vmainspect.commands.serve import host_names, session_command
from vmainspect.commands.serve_http import split_host
from vmainspect.errors import EXIT_ACCESS, EXIT_NO_PROCESS, EXIT_USAGE, BadInput

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "ws_client.py")) as f:
    CLIENT = f.read()
IS_ROOT = os.geteuid() == 0
AS_NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def client(port: int, path: str, *args: str, hold: float = 0) -> subprocess.Popen:
    """The websocket client, as nobody when we are root (as ourselves otherwise: also a stranger's view)."""
    prefix = AS_NOBODY if IS_ROOT and shutil.which("setpriv") else []
    cmd = [*prefix, "/usr/bin/python3", "-c", CLIENT, str(port), path, *args]
    if hold:
        cmd += ["--hold", str(hold)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def result(p: subprocess.Popen) -> dict:
    line = p.stdout.readline()
    assert line, f"client printed nothing: {p.stderr.read()}"
    return json.loads(line)


def run_client(port: int, path: str, *args: str) -> dict:
    p = client(port, path, *args)
    try:
        return result(p)
    finally:
        p.wait(60)
        p.stdout.close()
        p.stderr.close()


def app_sessions(serve: subprocess.Popen) -> list[psutil.Process]:
    """The served app processes (`vmainspect attach ...`) below the server."""
    out = []
    for c in psutil.Process(serve.pid).children(recursive=True):
        try:
            if "attach" in c.cmdline():
                out.append(c)
        except psutil.NoSuchProcess:
            pass
    return out


def start_serve(*command: str) -> tuple[subprocess.Popen, int, str]:
    """`vmainspect serve --port P COMMAND...` started, and its printed token: (process, port, token)."""
    port = free_port()
    serve = subprocess.Popen(
        [sys.executable, "-m", "vmainspect", "serve", "--port", str(port), *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    token = None
    deadline = time.monotonic() + 30
    while token is None and time.monotonic() < deadline:
        line = serve.stdout.readline()
        if not line:
            stop_serve(serve)
            pytest.fail(f"serve exited: {serve.stderr.read() if serve.stderr else ''}")
        m = re.search(r"\?token=(\S+)", line)
        if m:
            token = m.group(1)
    if token is None:
        stop_serve(serve)
        pytest.fail("serve printed no URL with a token")
    return serve, port, token


def stop_serve(serve: subprocess.Popen) -> None:
    serve.terminate()
    try:
        serve.wait(15)
    except subprocess.TimeoutExpired:
        serve.kill()
        serve.wait()
    serve.stdout.close()
    serve.stderr.close()


@pytest.fixture
def served():
    """`vmainspect serve attach PID` of a `sleep` this user owns: (port, token, serve process, target)."""
    target = subprocess.Popen(["sleep", "600"])
    try:
        serve, port, token = start_serve("attach", str(target.pid))
        try:
            yield port, token, serve, target
        finally:
            stop_serve(serve)
    finally:
        target.kill()
        target.wait()


def test_websocket_refused_without_token_and_from_a_foreign_origin_accepted_with_token(served):
    port, token, serve, _target = served
    origin = f"http://127.0.0.1:{port}"
    assert run_client(port, "/ws/wrong-token?width=80&height=24")["status"] == 403
    assert run_client(port, "/ws/?width=80&height=24")["status"] in (403, 404)
    assert run_client(port, f"/ws/{token}", "--origin", "http://evil.example.com")["status"] == 403
    assert run_client(port, f"/ws/{token}", "--origin", "null")["status"] == 403
    # DNS rebinding: a foreign name that resolves to this address
    assert run_client(port, f"/ws/{token}", "--host", f"evil.example.com:{port}")["status"] == 403
    assert not app_sessions(serve), "a refused request started an app"
    # with the token (and this server's own origin): the session shows the target
    first = client(port, f"/ws/{token}?width=100&height=30", "--origin", origin, "--expect", "sleep", hold=60)
    try:
        r = result(first)
        assert r["status"] == 101 and r["seen"], r
        # attach's session limit is 1: a second one is refused while the first is open
        assert run_client(port, f"/ws/{token}", "--origin", origin)["status"] == 503
        assert len(app_sessions(serve)) == 1
    finally:
        first.kill()
        first.wait()
        first.stdout.close()
        first.stderr.close()
    # the session ends with its connection: its app goes, and the next session is accepted
    # (serve gives the app 5 s to quit, then kills it and waits 5 s more: 60 s is for a loaded machine)
    deadline = time.monotonic() + 60
    while app_sessions(serve) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not app_sessions(serve), "the app outlived its connection"
    # its slot is freed once the server has seen the app end (moments later): poll for it
    deadline = time.monotonic() + 60
    while (r := run_client(port, f"/ws/{token}?width=80&height=24", "--expect", "sleep"))["status"] == 503:
        assert time.monotonic() < deadline, "the session's slot was never freed"
        time.sleep(0.2)
    assert r["status"] == 101 and r["seen"], r


def test_page_and_static_files_need_the_token(served):
    port, token, _serve, _target = served
    base = f"http://127.0.0.1:{port}"

    def status(url: str, headers: dict | None = None) -> int:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=10) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code

    assert status(f"{base}/") == 403
    assert status(f"{base}/?token=x{token}") == 403
    assert status(f"{base}/static/js/textual.js") == 403
    assert status(f"{base}/?token={token}", {"Host": "evil.example.com"}) == 403
    with urllib.request.urlopen(f"{base}/?token={token}", timeout=10) as r:
        page = r.read().decode()
        cookie = r.headers["Set-Cookie"]
    assert f"/ws/{token}" in page and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert status(f"{base}/static/js/textual.js", {"Cookie": cookie.split(";")[0]}) == 200
    assert status(f"{base}/download/x?token={token}") == 404  # textual-serve's download route is not served


def test_serve_attach_checks_its_target_first(capsys):
    port = str(free_port())
    rc = cli.main(["serve", "--port", port, "attach", "999999999"])
    err = capsys.readouterr().err
    assert rc == EXIT_NO_PROCESS and err.count("\n") == 1 and "999999999" in err
    rc = cli.main(["serve", "--port", port, "attach"])
    err = capsys.readouterr().err
    assert rc == EXIT_USAGE and err.count("\n") == 1 and "--picker" in err


@pytest.mark.parametrize(
    "url",
    ["javascript:alert(1)", "ftp://lecture-pc", "http://", "http://h:port", "https://h/?x=1", "http://h/#f"],
)
def test_public_url_must_be_an_http_url_with_a_host(url, capsys):
    """The URL goes into the page's links and decides the accepted Origin: refused before anything listens."""
    rc = cli.main(["serve", "--port", str(free_port()), "--public-url", url, "demo"])
    err = capsys.readouterr().err
    assert rc == EXIT_USAGE and err.count("\n") == 1 and "--public-url" in err


@pytest.mark.nobody
@pytest.mark.skipif(not IS_ROOT, reason="needs root to run serve as nobody against a root process")
def test_serve_attach_to_a_process_the_user_may_not_read_is_exit_4(nobody_pythonpath):
    target = subprocess.Popen(["sleep", "600"])
    try:
        p = subprocess.run(
            [*AS_NOBODY, sys.executable, "-m", "vmainspect", "serve", "--port", str(free_port())]
            + ["attach", str(target.pid)],
            env={**os.environ, "PYTHONPATH": nobody_pythonpath},
            capture_output=True,
            text=True,
            timeout=60,
            cwd="/",
        )
    finally:
        target.kill()
        target.wait()
    assert p.returncode == EXIT_ACCESS, p.stderr
    assert p.stderr.count("\n") == 1 and "Traceback" not in p.stderr


def test_session_command_offers_no_more_than_the_command_line():
    me = str(os.getpid())
    cmd = session_command(["attach", me, "--interval", "2"])[3:]
    assert cmd == ["attach", me, "--interval", "2.0", "--no-save"]
    # --name resolves to one PID now; the session gets that PID, not a picker
    unique = f"{600 + os.getpid() % 9973}.{time.time_ns() % 1000:03d}"
    target = subprocess.Popen(["sleep", unique])
    try:
        cmd = session_command(["attach", "--name", re.escape(f"sleep {unique}")])[3:]
        assert cmd[:2] == ["attach", str(target.pid)] and "--name" not in cmd
    finally:
        target.kill()
        target.wait()
    assert session_command(["attach"], picker=True)[3:] == ["attach", "--no-save"]
    with pytest.raises(BadInput, match="--picker"):
        session_command(["attach", me], picker=True)
    assert session_command(["attach", me], save_dir="/tmp")[3:] == ["attach", me, "--save-dir", "/tmp"]


def test_host_names():
    assert split_host("[::1]:8000") == "::1" and split_host("LocalHost:80") == "localhost"
    assert split_host("evil.example.com") == "evil.example.com"
    assert host_names("127.0.0.1") == {"127.0.0.1", "localhost", "::1"}
    assert "127.0.0.1" not in host_names("192.0.2.7")


def test_missing_textual_serve_is_its_own_exit_code(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "textual_serve", None)  # import fails
    rc = cli.main(["serve", "--port", str(free_port()), "demo"])
    err = capsys.readouterr().err
    assert rc == 7 and err.count("\n") == 1 and "vmainspect[serve]" in err


def test_served_picker_survives_a_markup_named_process():
    """`exec -a "[/]x"` crashed the picker (MarkupError) in the browser session as in the terminal."""
    evil = subprocess.Popen(["bash", "-c", 'exec -a "[/]x" sleep 600'])
    serve, port, token = start_serve("--picker", "attach")
    try:
        # the picker's title counts the rows once they are all in the table: the list has loaded,
        # the markup-named row with the others (a crash would end the app before that line)
        first = client(port, f"/ws/{token}?width=120&height=30", "--expect", "shown, sorted by", hold=30)
        try:
            r = result(first)
            assert r["status"] == 101 and r["seen"], r
            assert len(app_sessions(serve)) == 1, "the picker's app died"
        finally:
            first.kill()
            first.wait()
            first.stdout.close()
            first.stderr.close()
    finally:
        stop_serve(serve)
        evil.kill()
        evil.wait()
