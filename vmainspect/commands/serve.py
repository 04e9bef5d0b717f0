"""vmainspect serve: the TUI in a browser (textual-serve), for projectors that show a browser."""

from __future__ import annotations

import argparse
import ipaddress
import os
import secrets
import shlex
import socket
import sys
import urllib.parse

from ..errors import BadInput, MissingDependency
from .argtypes import int_arg

HELP = "serve the terminal UI to a web browser (loopback, with a secret token)"
DESCRIPTION = """Serve the TUI to web browsers with textual-serve (pip install 'vmainspect[serve]').
Each browser tab that opens the page gets its own session: a fresh
`vmainspect COMMAND ...` run on this machine as the user who started serve.

The command after the options (default: demo) is one of:
  demo                 the lecture demo workload
  open FILE            a snapshot or a recording (REC, REC@T, REC#N) with its timeline
  attach PID           that process only (attach --name REGEX must match exactly one);
                       with --picker, `attach` offers the process picker instead

The target is checked before serving: a missing process, a file that does
not load or a process you may not read is the same one-line error and exit
code as the command itself gives.

Safe by default: it listens on 127.0.0.1; the URL printed at start-up
carries a secret token, and every request without it is refused, as are
requests whose Host is not this server's name (DNS rebinding) and
websockets opened from another site's page (Origin). At most --max-sessions
sessions run at once (attach: 1, otherwise 3); a session ends with its
connection. Sessions cannot save files unless --save-dir is given. See
docs/security.md for what this does and does not protect against.

examples:
  vmainspect serve                              # demo, on http://127.0.0.1:8000/?token=...
  vmainspect serve --port 8080 open run.jsonl   # replay a recording in the browser
  vmainspect serve attach 1234                  # one process, one browser session
  vmainspect serve --host 0.0.0.0 --public-url http://lecture-pc:8000 demo"""

COMMANDS = ("demo", "open", "attach")
DEFAULT_SESSIONS = {"attach": 1, "demo": 3, "open": 3}
MAX_SESSIONS = 32


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
        "--max-sessions",
        type=int_arg(1, MAX_SESSIONS, "a number of sessions"),
        default=None,
        metavar="N",
        help="sessions at once (default 1 for attach, 3 for demo and open)",
    )
    p.add_argument(
        "--picker",
        action="store_true",
        help="attach: let the browser pick any process this user can read (default: only the PID given)",
    )
    p.add_argument(
        "--save-dir",
        metavar="DIR",
        default=None,
        help="let sessions save snapshots (the s key) into DIR (default: saving is off)",
    )
    p.add_argument(
        "command",
        nargs=argparse.REMAINDER,
        metavar="COMMAND ...",
        help="vmainspect command to run per browser session: demo (default), open FILE, attach PID",
    )


def session_command(args: list[str], *, picker: bool = False, save_dir: str | None = None) -> list[str]:
    """The command line run for each browser session, after checking its target.

    BadInput for a command serve does not run; the command's own error
    (ProcessGone, AccessDenied, BadInput) for a target it could not show.
    """
    if args and args[0] == "--":
        args = args[1:]
    if not args:
        args = ["demo"]
    if args[0] not in COMMANDS:
        raise BadInput(
            f"serve runs one of {', '.join(COMMANDS)}, not {args[0]!r} (e.g. vmainspect serve open run.jsonl)"
        )
    name, rest = args[0], list(args[1:])
    if name == "open":
        _check_open(rest)
    elif name == "attach":
        rest = _check_attach(rest, picker)
    # saving is off unless serve's own --save-dir says where
    if name == "demo":
        if save_dir is not None:
            raise BadInput("serve --save-dir is for attach and open (the demo's sessions do not save)")
        rest.append("--no-save")
    else:
        rest = [a for a in rest if not a.startswith("--save-dir")]
        rest += ["--save-dir", os.path.abspath(save_dir)] if save_dir is not None else ["--no-save"]
    return [sys.executable, "-m", "vmainspect", name, *rest]


def _sub_parser(name: str) -> argparse.ArgumentParser:
    import importlib

    mod = importlib.import_module(f"vmainspect.commands.{name}")
    p = _OneLineParser(prog=f"vmainspect serve {name}", add_help=False)
    mod.add_arguments(p)
    return p


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise BadInput(f"{self.prog}: {message}")


def _check_attach(rest: list[str], picker: bool) -> list[str]:
    """The attach arguments a session runs: the checked PID (or the picker when asked for)."""
    opts = _sub_parser("attach").parse_args(rest)
    if picker:
        if opts.pid is not None or opts.name:
            raise BadInput("serve --picker attach: give no PID or --name (the browser picks)")
        return rest
    pid = opts.pid
    if opts.name:
        if pid is not None:
            raise BadInput("give a PID or --name, not both")
        from ..tui.proclist import list_processes, match
        from .attach import NoMatch

        found = match(list_processes(), opts.name)
        if not found:
            raise NoMatch(f"no process matches {opts.name!r}")
        if len(found) > 1:
            pids = ", ".join(str(r.pid) for r in found[:10])
            raise BadInput(
                f"{len(found)} processes match {opts.name!r} ({pids}{', …' if len(found) > 10 else ''}): "
                "serve attaches to one; give its PID (or --picker)"
            )
        pid = found[0].pid
    if pid is None:
        raise BadInput("serve attach needs a PID (or --picker to let the browser pick any process)")
    _check_pid(pid)
    return [str(pid), *_options_without(_sub_parser("attach"), opts, drop={"name", "pid", "save_dir"})]


def _options_without(p: argparse.ArgumentParser, opts: argparse.Namespace, drop: set[str]) -> list[str]:
    """The options in ``opts`` that differ from their defaults, as arguments, except ``drop``."""
    out: list[str] = []
    for action in p._actions:
        if not action.option_strings or action.dest in drop:
            continue
        value = getattr(opts, action.dest, action.default)
        if value == action.default:
            continue
        if action.nargs == 0:
            out.append(action.option_strings[-1])
        else:
            out += [action.option_strings[-1], str(value)]
    return out


def _check_pid(pid: int) -> None:
    """The first collect, as `attach PID` does before its UI: one line and its exit code."""
    from ..tui.sources import LiveSource

    source = LiveSource(pid, pages=False, faults=False)
    try:
        source.prime()
    finally:
        source.close()


def _check_open(rest: list[str]) -> None:
    """Load the file now, so a bad one is a one-line error here, not a blank browser tab."""
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


def host_names(host: str) -> set[str]:
    """The Host header names this server answers to when bound to ``host``."""
    names = {host.lower().strip("[]")}
    if host in ("0.0.0.0", "::", ""):
        names = {socket.gethostname().lower(), socket.getfqdn().lower()}
    if _loopback(host) or host in ("0.0.0.0", "::", ""):
        names |= {"localhost", "127.0.0.1", "::1"}
    return names


def _check_public_url(url: str) -> None:
    """--public-url goes into the page's links and the websocket address, and its host is
    the Origin the server accepts: an http(s) URL with a host and nothing after the path."""
    try:
        u = urllib.parse.urlsplit(url)
        u.port  # noqa: B018  (raises ValueError on a port that is not a number)
    except ValueError:
        u = None
    if u is None or u.scheme not in ("http", "https") or not u.hostname or u.query or u.fragment:
        raise BadInput(
            "--public-url must be an http:// or https:// URL with a host, without ?query or #fragment"
        )


def _check_listen(host: str, port: int) -> None:
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
    try:
        import textual_serve  # noqa: F401
    except ImportError:
        raise MissingDependency(
            "serve needs textual-serve, an optional dependency: pip install 'vmainspect[serve]'"
        ) from None
    cmd = session_command(list(args.command), picker=args.picker, save_dir=args.save_dir)
    if args.picker and cmd[3] != "attach":
        raise BadInput("--picker is for serve attach")
    _check_listen(args.host, args.port)
    from .serve_http import GuardedServer

    public = args.public_url
    if public is not None:
        _check_public_url(public)
    if public is None:
        host = args.host
        if host in ("0.0.0.0", "::", ""):
            host = socket.gethostname()
        elif ":" in host:
            host = f"[{host}]"
        public = f"http://{host}:{args.port}"
    public = public.rstrip("/")
    if not _loopback(args.host):
        print(
            f"vmainspect: warning: serving on {args.host}, not loopback: anyone who can reach "
            f"port {args.port} and has the URL with its token can use this session",
            file=sys.stderr,
        )
    title = "vmainspect " + " ".join(cmd[3:])
    server = GuardedServer(
        shlex.join(cmd),
        host=args.host,
        port=args.port,
        title=title,
        public_url=public,
        token=secrets.token_urlsafe(32),
        host_names=host_names(args.host),
        max_sessions=args.max_sessions or DEFAULT_SESSIONS[cmd[3]],
    )
    try:
        server.serve()
    except OSError as e:
        raise BadInput(f"cannot serve on {args.host}:{args.port}: {e.strerror or e}") from None
    return 0
