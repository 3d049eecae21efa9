"""Headless Chromium driven over the DevTools protocol: open a page at a given viewport, wait until a condition
on its DOM holds (a MutationObserver, not a poll), read the DOM and take a screenshot.

Waiting on the page's own state is what makes the live-page test hold on a loaded machine: a fixed virtual-time
budget may run out before the WebSocket's first message is drawn.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import re
import shutil
import subprocess
import threading
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final

from websockets.asyncio.client import ClientConnection, connect

CHROMIUM: Final = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS: Final = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars")
_LISTENING: Final = re.compile(r"DevTools listening on (ws://\S+)")


class Page:
    """One tab, over its DevTools WebSocket."""

    def __init__(self, socket: ClientConnection) -> None:
        self._socket = socket
        self._ids = itertools.count(1)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        request_id = next(self._ids)
        await self._socket.send(json.dumps({"id": request_id, "method": method, "params": params}))
        while True:
            message = json.loads(await self._socket.recv())
            if message.get("id") == request_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))

    async def evaluate(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:80]}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, condition: str, timeout_s: float) -> None:
        """Until the JavaScript expression `condition` is true, checked on every DOM change and once a second."""
        script = f"""new Promise(resolve => {{
            const check = () => {{ try {{ return Boolean({condition}); }} catch (e) {{ return false; }} }};
            if (check()) return resolve(true);
            const observer = new MutationObserver(() => {{ if (check()) {{ observer.disconnect(); resolve(true); }} }});
            observer.observe(document, {{subtree: true, childList: true, characterData: true, attributes: true}});
        }})"""
        async with asyncio.timeout(timeout_s):
            await self.evaluate(script)

    async def html(self) -> str:
        return str(await self.evaluate("document.documentElement.outerHTML"))

    async def screenshot(self, path: Path) -> None:
        path.write_bytes(base64.b64decode((await self.call("Page.captureScreenshot", format="png"))["data"]))


@contextlib.asynccontextmanager
async def open_page(url: str, profile: Path, size: tuple[int, int], *, mobile: bool = False) -> AsyncIterator[Page]:
    """Chromium on a fresh profile showing `url` in a `size` viewport (a phone's, with `mobile`)."""
    assert CHROMIUM is not None
    process = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0",
                                f"--window-size={size[0]},{size[1]}", "about:blank"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        browser = await asyncio.wait_for(asyncio.to_thread(_devtools_url, process), 30)
        port = re.search(r":(\d+)/", browser)
        assert port is not None
        targets = await asyncio.to_thread(_json, f"http://127.0.0.1:{port.group(1)}/json/list")
        target = next(t for t in targets if t["type"] == "page")
        async with connect(target["webSocketDebuggerUrl"], max_size=None) as socket:
            page = Page(socket)
            await page.call("Emulation.setDeviceMetricsOverride", width=size[0], height=size[1],
                            deviceScaleFactor=1, mobile=mobile)
            await page.call("Page.enable")
            await page.call("Page.navigate", url=url)
            yield page
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _devtools_url(process: subprocess.Popen[str]) -> str:
    assert process.stderr is not None
    for line in process.stderr:
        match = _LISTENING.search(line)
        if match:
            # Keep reading what it logs, so a full pipe never blocks it.
            threading.Thread(target=lambda: [None for _ in process.stderr or ()], daemon=True).start()
            return match.group(1)
    raise RuntimeError(f"Chromium exited (code {process.wait()}) without a DevTools endpoint")


def _json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)
