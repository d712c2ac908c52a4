"""``qbconsole serve``: loopback unless a token, the token and origin checks, and viewers sharing one agent."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler

import aiohttp
import psutil
import pytest

from qbconsole.cli import main
from qbconsole.serve import COOKIE, ConsoleServer, ServeError, check_bind, session_value, viewer_argv
from qbconsole.store import Store

from helpers import holder_pid, qbconsole_process, serve_http, stop_http, wait_for


# ---- refusing to start ---------------------------------------------------------------------
def test_serve_binds_loopback_and_refuses_other_addresses_without_a_token(tmp_path, monkeypatch, capsys):
    check_bind("127.0.0.1", None)
    check_bind("::1", None)
    check_bind("0.0.0.0", "a-token")
    for host in ("0.0.0.0", "192.168.1.10", "::"):
        with pytest.raises(ServeError, match="QBCONSOLE_SERVE_TOKEN"):
            check_bind(host, None)
    monkeypatch.delenv("QBCONSOLE_SERVE_TOKEN", raising=False)
    rules = tmp_path / "rules.yaml"
    rules.write_text("alert_rules: []\n")
    status = main(["--db", str(tmp_path / "qb.db"), "--rules", str(rules), "serve", "--host", "0.0.0.0"])
    assert status == 1
    err = capsys.readouterr().err
    assert err.startswith("qbconsole: serving on 0.0.0.0 (not loopback) needs a token: set QBCONSOLE_SERVE_TOKEN")
    assert "Traceback" not in err


def test_serve_viewer_command_is_an_argv_list_for_the_same_store():
    argv = viewer_argv("/usr/bin/python3", "/data/qb db", "/etc/rules.yaml", datasource="http://p:9090",
                       operator="war room", theme="light")
    assert argv == ["/usr/bin/python3", "-m", "qbconsole", "--db", "/data/qb db", "--rules", "/etc/rules.yaml",
                    "--datasource", "http://p:9090", "--operator", "war room", "run", "--theme", "light"]


# ---- token and origin checks (in process; no viewer is started) ----------------------------------
async def _serving(server: ConsoleServer):
    stop = asyncio.Event()
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(server.run(ready.set_result, stop))
    url = await asyncio.wait_for(ready, 10)
    return url, stop, task


async def test_serve_token_is_required_then_kept_in_a_cookie_that_is_not_the_token():
    server = ConsoleServer([sys.executable, "-c", "pass"], "127.0.0.1", 0, token="s3cret-token")
    url, stop, task = await _serving(server)
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            async with http.get(url) as r:
                assert r.status == 401 and "token" in await r.text()
            async with http.get(url + "static/js/textual.js") as r:
                assert r.status == 401
            async with http.get(url + "?token=wrong") as r:
                assert r.status == 403
            async with http.get(url + "?token=s3cret-token&fontsize=20", allow_redirects=False) as r:
                assert r.status == 302 and r.headers["Location"] == "/?fontsize=20"
                cookie = r.cookies[COOKIE]
                assert cookie.value == session_value("s3cret-token") != "s3cret-token"
                assert cookie["httponly"] and cookie["samesite"] == "Strict"
            async with http.get(url + "?fontsize=20") as r:  # the cookie does it now
                page = await r.text()
                assert r.status == 200
            host = url.split("//", 1)[1].rstrip("/")
            assert f'data-session-websocket-url="ws://{host}/ws"' in page
            assert 'data-font-size="20"' in page
        async with aiohttp.ClientSession() as http:
            async with http.get(url, headers={"Authorization": "Bearer s3cret-token"}) as r:
                assert r.status == 200
            with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
                await http.ws_connect(url + "ws", headers={"Authorization": "Bearer s3cret-token",
                                                           "Origin": "http://evil.example"})
            assert caught.value.status == 403
        assert server.viewers == set()
    finally:
        stop.set()
        await task


async def test_serve_without_token_on_loopback_is_open_but_still_checks_the_origin():
    server = ConsoleServer([sys.executable, "-c", "pass"], "127.0.0.1", 0)
    url, stop, task = await _serving(server)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(url) as r:
                assert r.status == 200
            with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
                await http.ws_connect(url + "ws", headers={"Origin": "http://evil.example"})
            assert caught.value.status == 403
    finally:
        stop.set()
        await task


# ---- viewers share one agent -------------------------------------------------------------------
class _Counter(BaseHTTPRequestHandler):
    hits = 0
    lock = threading.Lock()

    def do_GET(self):  # noqa: N802
        with _Counter.lock:
            _Counter.hits += 1
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def probe_target():
    server = serve_http(_Counter)
    yield f"http://127.0.0.1:{server.server_address[1]}/health"
    stop_http(server)


@pytest.fixture
def serve_process(tmp_path, probe_target):
    rules = tmp_path / "rules.yaml"
    rules.write_text(f"sources:\n  - {{name: probe, kind: http, url: '{probe_target}', interval: 250ms}}\n")
    out = tmp_path / "serve.out"
    env = {k: v for k, v in os.environ.items() if k != "QBCONSOLE_SERVE_TOKEN"}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    proc = qbconsole_process(["--db", str(tmp_path / "qb.db"), "--rules", str(rules), "serve", "--port", "0"],
                             log=out, env=env)
    try:
        url = wait_for(lambda: re.search(r"qbconsole serve: (http://\S+?);", out.read_text()), 20, 0.1)
        assert url, out.read_text()
        yield proc, url.group(1), tmp_path / "qb.db", out
    finally:
        children = psutil.Process(proc.pid).children(recursive=True) if proc.poll() is None else []
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        for child in children:  # only the viewers this server started
            if child.is_running():
                child.kill()


def _viewers(pid: int) -> list[psutil.Process]:
    return sorted(psutil.Process(pid).children(), key=lambda p: p.create_time())


async def test_serve_two_viewers_run_one_agent_through_the_lease(serve_process):
    proc, url, db, out = serve_process
    loop = asyncio.get_running_loop()

    async def wait(predicate, timeout):
        return await loop.run_in_executor(None, wait_for, predicate, timeout, 0.1)

    async def drain(ws, seconds):
        received = 0
        end = loop.time() + seconds
        while loop.time() < end:
            try:
                msg = await asyncio.wait_for(ws.receive(), max(0.01, end - loop.time()))
            except asyncio.TimeoutError:
                break
            if msg.type in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT):
                received += 1
        return received

    with Store.open(db) as store:
        async with aiohttp.ClientSession() as http:
            ws1 = await http.ws_connect(url + "ws?width=100&height=30")
            [first] = await wait(lambda: _viewers(proc.pid), 20)
            assert await wait(lambda: holder_pid(store) == first.pid, 30), \
                f"the first viewer's agent did not take the lease:\n{out.read_text()[-3000:]}"
            ws2 = await http.ws_connect(url + "ws?width=100&height=30")
            await wait(lambda: len(_viewers(proc.pid)) == 2, 20)
            second = _viewers(proc.pid)[1]
            assert await drain(ws2, 4.0) > 0  # the second console is up and drawing

            before = _Counter.hits
            await asyncio.sleep(3.0)
            hits = _Counter.hits - before
            # one collector at 250 ms makes ~12 requests in 3 s; two would make ~24
            assert 6 <= hits <= 17, hits
            assert holder_pid(store) == first.pid and first.is_running() and second.is_running()

            await ws1.close()  # the holder's viewer leaves: the other console's agent takes over
            assert await wait(lambda: holder_pid(store) == second.pid, 15)
            assert await wait(lambda: not first.is_running() or first.status() == psutil.STATUS_ZOMBIE, 10)
            await ws2.close()
            assert await wait(lambda: _viewers(proc.pid) == [] or all(
                p.status() == psutil.STATUS_ZOMBIE for p in _viewers(proc.pid)), 15)
