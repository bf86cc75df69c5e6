"""The web stock board (client-examples/web: Amplify JS v6 bundled with esbuild) in headless Chromium
against `bloodbank serve --tls`: the board shows the seeded stock, an admin's threshold change
reaches the page as a live shortage alert, the hospital orders blood and sees an API error by its
code, and the page fits a 375 px phone without horizontal scroll.

Needs Node, the npm devDependencies (esbuild, playwright-core) and /usr/bin/chromium: `make test`
installs all three, so this test fails rather than skips when one is missing."""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.test_local_stack import Stack

pytestmark = pytest.mark.stack

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "client-examples" / "web"
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
ALERT_KEY = "site-north|A_NEG|PLATELETS"
THRESHOLD = """mutation { setStockThreshold(input: {siteId: "site-north", bloodGroup: A_NEG,
  component: PLATELETS, parLevel: 30}) { status threshold } }"""


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def static_site(folder: Path) -> Iterator[str]:
    """``folder`` over HTTP on 127.0.0.1 (a free port) until the block ends."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def build_site(node: str, out: Path) -> Path:
    """The page as it is deployed: index.html and style.css beside a fresh esbuild bundle."""
    out.mkdir()
    for name in ("index.html", "style.css"):
        shutil.copy(WEB / name, out / name)
    subprocess.run([node, str(WEB / "build.mjs"), str(out / "dist")], cwd=ROOT, check=True, timeout=120)
    assert (out / "dist" / "app.js").stat().st_size > 10_000
    return out


def test_the_web_board_shows_stock_live_alerts_and_orders_in_chromium(tmp_path: Path) -> None:
    node = shutil.which("node")
    assert node, "Node is needed for the web example (the machine has Node 20)"
    assert (ROOT / "node_modules" / "playwright-core").is_dir(), (
        "run `make test`: it installs playwright-core"
    )
    assert CHROMIUM.exists(), "run `make test`: it installs Debian's chromium"
    site = build_site(node, tmp_path / "site")
    shots = tmp_path / "screenshots"
    shots.mkdir()
    stack = Stack(tmp_path / "state", tls=True)
    with stack.running(), static_site(site) as origin:
        token = stack.token("hospital")
        levels = stack.gql(  # the seeded stock, as the page will find it
            "{ stockLevels { siteId bloodGroup component available reserved threshold status } }", token
        )["data"]["stockLevels"]
        env = {
            **os.environ,
            "PAGE_URL": f"{origin}/index.html",
            "API": f"{stack.url}/graphql",
            "TOKEN": token,
            "SHOTS": str(shots),
            "ALERT_KEY": ALERT_KEY,
            "CHROMIUM": str(CHROMIUM),
        }
        browser = subprocess.Popen(
            [node, str(WEB / "e2e.mjs")],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert browser.stdout is not None
            first = browser.stdout.readline()  # blocks until the page's subscription is acknowledged
            assert first, browser.communicate(timeout=60)
            assert json.loads(first)["event"] == "subscribed", first
            admin = stack.token("admin")
            changed = httpx.post(
                f"{stack.url}/graphql",
                json={"query": THRESHOLD},
                headers={"Authorization": admin},
                verify=ssl.create_default_context(cafile=str(stack.certificate)),
                timeout=30,
            ).json()
            assert "errors" not in changed, changed
            out, err = browser.communicate(timeout=120)
        finally:
            if browser.poll() is None:
                browser.kill()
                browser.communicate()
        assert browser.returncode == 0, err
        result = json.loads(out.splitlines()[-1])
        assert result["event"] == "done"
        stored = stack.gql(
            "query($id: ID!) { getBloodRequest(id: $id) { id status quantity urgency bloodGroup } }",
            token,
            {"id": result["created"]["id"]},
        )["data"]["getBloodRequest"]
    assert result["problems"] == []
    assert not result["tokenInUrl"], "the page must remove #token= from the address bar"

    assert result["badToken"]["code"] == "UNAUTHENTICATED"
    assert "Sign in again" in result["badToken"]["text"]
    assert result["badToken"]["formShown"]

    # The board: the seeded levels someone stocks or watches, by site, status in words as well as colour.
    board = {row["key"]: row for row in result["board"]}
    seeded = {f"{x['siteId']}|{x['bloodGroup']}|{x['component']}": x for x in levels}
    watched = {
        k
        for k, x in seeded.items()
        if x["available"] or x["reserved"] or x["threshold"] or x["status"] != "GREEN"
    }
    assert board.keys() == watched
    assert "site-south|O_POS|RED_CELLS" in board
    assert {key.split("|")[0] for key in board} == {"site-north", "site-south", "site-london"}
    assert (board["site-north|O_NEG|RED_CELLS"]["site"], board["site-north|O_NEG|RED_CELLS"]["group"]) == (
        "Northgate Blood Centre",
        "O−",
    )
    for key, row in board.items():
        assert row["statusText"].split(":")[0].upper() == row["status"]
        assert (row["available"], row["status"]) == (seeded[key]["available"], seeded[key]["status"]), key
    assert result["boardStatus"] == (
        f"{len(board)} of {len(seeded)} stock levels shown,"
        f" {sum(x['status'] != 'GREEN' for x in seeded.values())} amber or red."
    )
    assert result["allLevels"] == len(seeded)
    assert result["southSites"] == ["site-south"]

    # The alert: in the aria-live list, and the board's row moved with it.
    alert = result["alert"]
    assert alert["liveRegion"] == "polite"
    assert alert["status"] in {"AMBER", "RED"}
    assert "Northgate Blood Centre: A− Platelets" in alert["text"]
    assert "par level 30" in alert["text"]
    assert result["rowAfterAlert"]["status"] == alert["status"]
    assert result["rowAfterAlert"]["threshold"] == 30
    assert result["rowAfterAlert"]["statusText"].split(":")[0].upper() == alert["status"]

    # The order: created as the API reports it, and the same order read back over the API.
    created = result["created"]
    assert created["status"] in {"PENDING", "PARTIALLY_FULFILLED", "FULFILLED"}
    assert "2 × A+ Red cells" in created["text"]
    assert (stored["id"], stored["status"]) == (created["id"], created["status"])
    assert (stored["quantity"], stored["urgency"], stored["bloodGroup"]) == (2, "URGENT", "A_POS")
    # The refused order: the code's human message, the API's detail and the field marked.
    rejected = result["rejected"]
    assert rejected["code"] == "BAD_USER_INPUT"
    assert rejected["role"] == "alert"
    assert "Some details are not valid" in rejected["text"]
    assert "within 90 days" in rejected["text"]
    assert rejected["fieldInvalid"] == "true"
    assert "within 90 days" in rejected["fieldMessage"]
    assert "blood group" in result["clientSide"]

    # The phone: no horizontal page scroll; rows as cards.
    phone = result["phone"]
    assert phone["scrollWidth"] <= 375, phone
    assert phone["widestPanel"] <= 375, phone
    assert phone["rowDisplay"] == "grid"
    for name in ("desktop.png", "phone.png", "phone-full.png"):
        assert (shots / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
