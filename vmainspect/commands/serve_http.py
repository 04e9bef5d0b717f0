"""The HTTP side of `vmainspect serve`: textual-serve's server, guarded.

textual-serve starts one app process per websocket and checks nothing. This
subclass adds, on every HTTP and websocket request (an aiohttp middleware):

- a secret token (the printed URL's ``?token=``, then a cookie the page sets,
  or ``/ws/TOKEN`` for the websocket), compared in constant time;
- the ``Host`` header: only the names this server answers to (the bound
  address, loopback names when bound to loopback, the --public-url host), so a
  foreign name that resolves here (DNS rebinding) is refused;
- the ``Origin`` header when present (browsers always send it on websockets):
  only this server's own origins, so a web page elsewhere cannot drive it;
- a limit on simultaneous sessions; a session's app process is ended when its
  websocket closes.

The routes are textual-serve's page, static files and websocket; its download
route (files the app offers to the browser) is not served: vmainspect's apps
offer none. See docs/security.md for the threat model.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import signal
import sys
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web
from textual_serve.app_service import AppService
from textual_serve.server import Server, to_int
from yarl import URL

from ..safetext import printable

log = logging.getLogger("vmainspect.serve")

STOP_GRACE_S = 5.0  # an app that does not quit this long after its websocket closed is killed


def split_host(value: str) -> str:
    """The host name of a ``Host`` header value (``[::1]:8000`` -> ``::1``), lower case."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        return value[1:end] if end > 0 else value
    if value.count(":") == 1:
        return value.split(":", 1)[0]
    return value


def _origin(url: str) -> tuple[str, str, int | None] | None:
    try:
        u = URL(url)
    except ValueError:
        return None
    if u.scheme not in ("http", "https") or not u.host:
        return None
    return (u.scheme, u.host.lower().strip("[]"), u.port)


class GuardedServer(Server):
    """textual-serve's Server with a token, Host/Origin checks and a session limit."""

    def __init__(
        self,
        command: str,
        *,
        host: str,
        port: int,
        title: str,
        public_url: str,
        token: str,
        host_names: set[str],
        max_sessions: int,
    ) -> None:
        super().__init__(command, host=host, port=port, title=title, public_url=public_url)
        self.token = token
        self.host_names = {h.lower() for h in host_names}
        pub = _origin(public_url)
        if pub is not None:
            self.host_names.add(pub[1])
        self.origins: set[tuple[str, str, int | None]] = {("http", h, port) for h in self.host_names}
        if pub is not None:
            self.origins.add(pub)
        self.max_sessions = max_sessions
        self.sessions = 0
        self.cookie = f"vmainspect-token-{port}"

    # --- checks ----------------------------------------------------------------
    def _token_ok(self, request: web.Request) -> bool:
        candidates = (
            request.match_info.get("token"),
            request.query.get("token"),
            request.cookies.get(self.cookie),
        )
        return any(c is not None and hmac.compare_digest(c.encode(), self.token.encode()) for c in candidates)

    def refusal(self, request: web.Request) -> str | None:
        """Why this request is refused, or None if it may proceed."""
        if split_host(request.headers.get("Host", "")) not in self.host_names:
            return "unknown Host (only the address this server was started on is served)"
        origin = request.headers.get("Origin")
        if origin is not None and _origin(origin) not in self.origins:
            return "foreign Origin (only pages from this server may connect)"
        if not self._token_ok(request):
            return "missing or wrong token (open the URL with ?token=... printed when serve started)"
        return None

    @web.middleware
    async def _guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        why = self.refusal(request)
        if why is not None:
            log.warning("refused %s %r from %s: %s", request.method, request.path, request.remote, why)
            return web.Response(status=403, text=f"vmainspect serve: refused: {why}\n")
        response: web.StreamResponse = await handler(request)
        return response

    # --- the aiohttp app ----------------------------------------------------------
    async def _make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard])
        aiohttp_jinja2.setup(
            app, loader=jinja2.FileSystemLoader(self.templates_path), autoescape=jinja2.select_autoescape()
        )
        app.add_routes(
            [
                web.get("/", self.handle_index, name="index"),
                web.get("/ws/{token}", self.handle_websocket, name="websocket"),
                web.static("/static", self.statics_path, name="static"),
            ]
        )
        return app

    def _listening(self, *_args: object) -> None:
        """Called by aiohttp once the socket listens: only then is the URL worth printing."""
        # plain text: the command names files, which are not markup
        print(f"vmainspect serve: {printable(self.title)}", flush=True)
        print(f"  open {self.public_url}/?token={self.token}", flush=True)
        print(
            f"  (at most {self.max_sessions} session{'s' if self.max_sessions != 1 else ''} at a time; "
            "Ctrl+C stops)",
            flush=True,
        )

    def serve(self, debug: bool = False) -> None:
        """Serve until SIGINT or SIGTERM (textual-serve's serve(), printing the URL once listening)."""
        self.initialize_logging()
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        loop.add_signal_handler(signal.SIGINT, self.request_exit)
        loop.add_signal_handler(signal.SIGTERM, self.request_exit)
        web.run_app(
            self._make_app(),
            host=self.host,
            port=self.port,
            handle_signals=False,
            loop=loop,
            print=self._listening,
            access_log=None,
        )

    async def handle_index(self, request: web.Request) -> web.StreamResponse:
        """textual-serve's page, with the websocket URL carrying the token; sets the token cookie."""
        ws_path = request.app.router["websocket"].url_for(token=self.token)
        static = request.app.router["static"].url_for(filename="/")
        ws_url = f"{self.public_url}{ws_path}"
        ws_url = ("wss:" if ws_url.startswith("https:") else "ws:") + ws_url.split(":", 1)[1]
        context = {
            "font_size": to_int(request.query.get("fontsize", "16"), 16),
            "app_websocket_url": ws_url,
            "config": {"static": {"url": f"{self.public_url}{static}".rstrip("/") + "/"}},
            "application": {"name": self.title},
        }
        response = aiohttp_jinja2.render_template("app_index.html", request, context)
        response.set_cookie(self.cookie, self.token, httponly=True, samesite="Strict", path="/")
        response.headers["Referrer-Policy"] = "no-referrer"  # the token is in the page's URL
        response.headers["Cache-Control"] = "no-store"
        return response

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        if self.sessions >= self.max_sessions:
            log.warning("refused a session from %s: %d already open", request.remote, self.sessions)
            raise web.HTTPServiceUnavailable(
                text=f"vmainspect serve: refused: {self.sessions} session(s) already open "
                f"(the limit is {self.max_sessions}; see serve --max-sessions)\n"
            )
        self.sessions += 1  # released by _session once its app has ended
        return await self._session(request)

    async def _session(self, request: web.Request) -> web.WebSocketResponse:
        websocket = web.WebSocketResponse(heartbeat=15, max_msg_size=1 << 20)
        width = min(max(to_int(request.query.get("width", "80"), 80), 10), 1000)
        height = min(max(to_int(request.query.get("height", "24"), 24), 5), 1000)
        try:
            await websocket.prepare(request)
        except BaseException:
            self.sessions -= 1
            raise

        async def close() -> None:
            await websocket.close()

        service = AppService(
            self.command,
            write_bytes=websocket.send_bytes,
            write_str=websocket.send_str,
            close=close,
            download_manager=self.download_manager,
            debug=False,
        )
        try:
            await service.start(width, height)
            await self._process_messages(websocket, service)
        except asyncio.CancelledError:
            pass
        except (ValueError, TypeError, KeyError, AssertionError, AttributeError) as e:
            # a malformed message from the browser ends its session, not the server
            log.warning("session from %s ended: bad message (%s)", request.remote, e)
        finally:
            try:
                await self._end(service)
            finally:
                self.sessions -= 1  # the app is gone: the slot is free (before a slow close handshake)
            await websocket.close()
        return websocket

    async def _end(self, service: AppService) -> None:
        """Ask the app to quit; kill it if it has not after STOP_GRACE_S."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(service.stop(), STOP_GRACE_S)
        process = getattr(service, "_process", None)
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(process.wait(), STOP_GRACE_S)

    def initialize_logging(self) -> None:
        logging.basicConfig(level=logging.INFO, format="vmainspect serve: %(message)s", stream=sys.stderr)
