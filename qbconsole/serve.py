"""``qbconsole serve``: the console in a browser (textual-serve), for the war room's big screen.

Every browser tab that connects gets its own console process (``qbconsole
run`` under Textual's web driver) attached to the same store. The consoles
share one agent through the store's lease, exactly as terminal consoles do:
ten tabs still run one set of collectors.

Access: it binds 127.0.0.1 unless told otherwise. Any other address needs a
token in ``QBCONSOLE_SERVE_TOKEN`` (refused without one); with a token set,
every request must carry it, whatever the address. textual-serve has no
authentication of its own, so this module adds it as an aiohttp middleware:
open ``/?token=TOKEN`` once, the answer sets an HttpOnly, SameSite=Strict
cookie (derived from the token, not the token) and redirects to ``/``;
``Authorization: Bearer TOKEN`` works too. WebSocket upgrades from another
origin are refused always (a web page elsewhere must not drive a console on
loopback). Viewer processes are started from an argv list, never a shell.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import shlex
import signal
from typing import Callable, Sequence
from urllib.parse import urlsplit

import aiohttp_jinja2
from aiohttp import web
from textual_serve.app_service import AppService
from textual_serve.server import Server, to_int

from qbconsole.exporter import is_loopback

log = logging.getLogger("qbconsole.serve")

WEB_DRIVER = "textual.drivers.web_driver:WebDriver"
TOKEN_ENV = "QBCONSOLE_SERVE_TOKEN"
COOKIE = "qbconsole_serve"
STOP_TIMEOUT_S = 5.0


class ServeError(Exception):
    """A set-up the server refuses to start with."""


def is_web_viewer() -> bool:
    """True inside a console process started by textual-serve (its web driver is the terminal)."""
    return os.environ.get("TEXTUAL_DRIVER") == WEB_DRIVER


def check_bind(host: str, token: str | None) -> None:
    """Refuse an address other than loopback without a token."""
    if not is_loopback(host) and not token:
        raise ServeError(f"serving on {host} (not loopback) needs a token: set {TOKEN_ENV} "
                         "(viewers open the URL with ?token=...), or bind 127.0.0.1")


def session_value(token: str) -> str:
    """The cookie's value: derived from the token, so the cookie never holds the token itself."""
    return hmac.new(token.encode(), b"qbconsole-serve-session", hashlib.sha256).hexdigest()


class ViewerService(AppService):
    """textual-serve's per-browser process manager, started from an argv list (no shell)."""

    def __init__(self, argv: Sequence[str], **kwargs) -> None:
        super().__init__(shlex.join(argv), **kwargs)
        self.argv = list(argv)

    async def _open_app_process(self, width: int = 80, height: int = 24):
        env = self._build_environment(width=width, height=height)
        self._process = process = await asyncio.create_subprocess_exec(
            *self.argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=env)
        self._stdin = process.stdin
        return process

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def kill(self) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.kill()


class ConsoleServer(Server):
    """textual-serve's server with a token check, an origin check, argv viewers, and a clean stop."""

    def __init__(self, argv: Sequence[str], host: str = "127.0.0.1", port: int = 8000, *,
                 token: str | None = None, public_url: str | None = None, title: str = "qbconsole") -> None:
        check_bind(host, token)
        super().__init__(shlex.join(argv), host=host, port=port, title=title, public_url=public_url)
        self.argv = list(argv)
        self.token = token or None
        self.fixed_public_url = public_url.rstrip("/") if public_url else None
        self.viewers: set[ViewerService] = set()

    # ---- the aiohttp application ------------------------------------------------------------
    async def _make_app(self) -> web.Application:
        app = await super()._make_app()
        app.middlewares.append(self._guard)
        return app

    def _authorised(self, request: web.Request) -> bool:
        if self.token is None:
            return True
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer ") and hmac.compare_digest(header[7:].encode(), self.token.encode()):
            return True
        cookie = request.cookies.get(COOKIE, "")
        return hmac.compare_digest(cookie.encode(), session_value(self.token).encode())

    @web.middleware
    async def _guard(self, request: web.Request, handler):
        if request.path == "/ws":
            origin = request.headers.get("Origin")
            if origin is not None and urlsplit(origin).netloc != request.host:
                return web.Response(status=403, text="qbconsole serve: websocket from another origin refused\n")
        if self.token is not None and request.path == "/" and "token" in request.query:
            if not hmac.compare_digest(request.query["token"].encode(), self.token.encode()):
                return web.Response(status=403, text="qbconsole serve: wrong token\n")
            rest = {k: v for k, v in request.query.items() if k != "token"}
            redirect = web.HTTPFound(request.rel_url.with_query(rest))
            redirect.set_cookie(COOKIE, session_value(self.token), httponly=True, samesite="Strict",
                                secure=request.scheme == "https", path="/")
            raise redirect
        if not self._authorised(request):
            return web.Response(status=401, headers={"WWW-Authenticate": "Bearer"},
                                text=f"qbconsole serve: open /?token=... with the value of {TOKEN_ENV}\n")
        return await handler(request)

    def _public_url(self, request: web.Request) -> str:
        return self.fixed_public_url or f"{request.scheme}://{request.host}"

    async def handle_index(self, request: web.Request) -> web.Response:
        base = self._public_url(request)
        router = request.app.router
        ws_url = base + str(router["websocket"].url_for())
        ws_url = ("wss:" if base.startswith("https") else "ws:") + ws_url.split(":", 1)[1]
        context = {
            "font_size": to_int(request.query.get("fontsize", "16"), 16),
            "app_websocket_url": ws_url,
            "config": {"static": {"url": base + str(router["static"].url_for(filename="/")).rstrip("/") + "/"}},
            "application": {"name": self.title},
        }
        return aiohttp_jinja2.render_template("app_index.html", request, context)

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        websocket = web.WebSocketResponse(heartbeat=15)
        width = to_int(request.query.get("width", "80"), 80)
        height = to_int(request.query.get("height", "24"), 24)
        viewer: ViewerService | None = None
        try:
            await websocket.prepare(request)
            viewer = ViewerService(self.argv, write_bytes=websocket.send_bytes, write_str=websocket.send_str,
                                   close=websocket.close, download_manager=self.download_manager, debug=False)
            self.viewers.add(viewer)
            await viewer.start(width, height)
            log.info("viewer %s connected (console pid %s)", request.remote, viewer.pid)
            try:
                await self._process_messages(websocket, viewer)
            finally:
                await self._stop_viewer(viewer)
        except asyncio.CancelledError:
            await websocket.close()
        except Exception as error:  # one broken viewer never takes the server down
            log.error("viewer failed: %s", type(error).__name__)
        finally:
            if viewer is not None:
                await self._stop_viewer(viewer)
                self.viewers.discard(viewer)
        return websocket

    async def _stop_viewer(self, viewer: ViewerService) -> None:
        try:
            await asyncio.wait_for(viewer.stop(), STOP_TIMEOUT_S)
        except (asyncio.TimeoutError, ConnectionError, RuntimeError):
            viewer.kill()

    async def on_startup(self, app: web.Application) -> None:
        """(textual-serve prints a banner here; the caller reports the URL instead.)"""

    async def on_shutdown(self, app: web.Application) -> None:
        await asyncio.gather(*(self._stop_viewer(v) for v in list(self.viewers)), return_exceptions=True)

    def initialize_logging(self) -> None:
        """(textual-serve installs a handler showing tracebacks with locals; the CLI's logging stays.)"""

    # ---- running ----------------------------------------------------------------------------
    async def run(self, ready: Callable[[str], None], stop: asyncio.Event | None = None) -> None:
        """Serve until SIGINT/SIGTERM (or ``stop`` is set); ``ready(url)`` once listening."""
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stop.set)
            except (NotImplementedError, RuntimeError):  # not the main thread
                pass
        runner = web.AppRunner(await self._make_app(), handle_signals=False, shutdown_timeout=STOP_TIMEOUT_S)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port)
            await site.start()
            host, port = runner.addresses[0][:2]
            shown = f"[{host}]" if ":" in host else host
            ready(self.fixed_public_url or f"http://{shown}:{port}/")
            await stop.wait()
        finally:
            await runner.cleanup()  # on_shutdown stops every viewer process


def viewer_argv(python: str, db: str, rules: str, *, datasource: str | None = None,
                operator: str | None = None, theme: str | None = None) -> list[str]:
    """The command each browser viewer runs: this console on the same store and rules."""
    argv = [python, "-m", "qbconsole", "--db", db, "--rules", rules]
    if datasource:
        argv += ["--datasource", datasource]
    if operator:
        argv += ["--operator", operator]
    argv.append("run")
    if theme:
        argv += ["--theme", theme]
    return argv
