"""vmainspect serve: the TUI in a browser (textual-serve), for projectors that show a browser."""

from __future__ import annotations

import argparse
import ipaddress
import os
import shlex
import socket
import sys

from ..cli import int_arg

HELP = "serve the terminal UI to a web browser (loopback by default)"
DESCRIPTION = """Serve the TUI to web browsers with textual-serve. Every browser tab that opens
the page gets its own session: a fresh `vmainspect COMMAND ...` started on
this machine, shown in the tab.

The command after the options (default: demo) is one of:
  demo                 the lecture demo workload
  open FILE            a snapshot or a recording (REC, REC@T, REC#N) with its timeline
  attach PID           a live process (attach --name REGEX also works)

Listens on 127.0.0.1 only unless --host says otherwise. Anyone who can reach
the port sees what the command shows (for attach: the process's memory map,
with the server's privileges), so think before using --host 0.0.0.0.

examples:
  vmainspect serve                              # demo, on http://127.0.0.1:8000
  vmainspect serve --port 8080 open run.jsonl   # replay a recording in the browser
  vmainspect serve --host 0.0.0.0 --public-url http://lecture-pc:8000 demo"""

COMMANDS = ("demo", "open", "attach")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument(
        "--port",
        type=int_arg(1, 65535, "a port number"),
        default=8000,
        help="port to listen on (default 8000)",
    )
    p.add_argument(
        "--public-url",
        metavar="URL",
        default=None,
        help="the URL browsers use to reach this server (default http://HOST:PORT); "
        "needed behind a proxy or with --host 0.0.0.0",
    )
    p.add_argument(
        "command",
        nargs=argparse.REMAINDER,
        metavar="COMMAND ...",
        help="vmainspect command to run per browser session: demo (default), open FILE, attach PID",
    )


def session_command(args: list[str]) -> list[str]:
    """The command line run for each browser session; BadInput if it is not a TUI command."""
    from ..errors import BadInput

    if args and args[0] == "--":
        args = args[1:]
    if not args:
        args = ["demo"]
    if args[0] not in COMMANDS:
        raise BadInput(
            f"serve runs one of {', '.join(COMMANDS)}, not {args[0]!r} (e.g. vmainspect serve open run.jsonl)"
        )
    if args[0] == "open":
        _check_open(args[1:])
    return [sys.executable, "-m", "vmainspect", *args]


def _check_open(rest: list[str]) -> None:
    """Load the file now, so a bad one is a one-line error here, not a blank browser tab."""
    from ..errors import BadInput

    files = [a for a in rest if not a.startswith("-")]
    if not files:
        raise BadInput("serve open: name the snapshot or recording file")
    from ..recording.io import moment_index, read_recording, sniff, split_moment
    from ..snapshot.io import load

    path, moment = split_moment(files[0])
    if os.path.isfile(path) and sniff(path) == "recording":
        rec = read_recording(path)
        if moment:
            moment_index(rec, moment)
    else:
        load(files[0])


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_listen(host: str, port: int) -> None:
    from ..errors import BadInput

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise BadInput(f"cannot listen on {host}: {e.strerror}") from None
    family, _, _, _, addr = infos[0]
    s = socket.socket(family, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(addr)
    except OSError as e:
        raise BadInput(f"cannot listen on {host}:{port}: {e.strerror}") from None
    finally:
        s.close()


def run(args: argparse.Namespace) -> int:
    from ..errors import Unsupported

    cmd = session_command(list(args.command))
    _check_listen(args.host, args.port)
    try:
        from textual_serve.server import Server
    except ImportError:
        raise Unsupported("serve needs textual-serve: pip install 'vmainspect[serve]'") from None
    public = args.public_url
    if public is None:
        host = args.host
        if host in ("0.0.0.0", "::", ""):
            host = socket.gethostname()
        elif ":" in host:
            host = f"[{host}]"
        public = f"http://{host}:{args.port}"
    if not _loopback(args.host):
        print(
            f"vmainspect: warning: serving on {args.host}, not loopback: anyone who can reach "
            f"port {args.port} can use this session",
            file=sys.stderr,
        )
    title = "vmainspect " + " ".join(cmd[3:])
    server = Server(shlex.join(cmd), host=args.host, port=args.port, title=title, public_url=public)
    try:
        server.serve()
    except OSError as e:
        from ..errors import BadInput

        raise BadInput(f"cannot serve on {args.host}:{args.port}: {e.strerror or e}") from None
    return 0
