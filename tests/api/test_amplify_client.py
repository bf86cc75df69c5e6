"""Amplify JS v6, unchanged, against `bloodbank serve --tls`: client-examples/amplify/subscribe.mjs
subscribes in Node over AppSync's real-time protocol and receives the shortage alert an admin's
mutation causes. Needs Node (on the machine) and `aws-amplify` and `ws` (package.json: `make test`
installs them)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.api.test_local_stack import Stack

pytestmark = pytest.mark.stack

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "client-examples" / "amplify" / "subscribe.mjs"
THRESHOLD = """mutation { setStockThreshold(input: {siteId: "site-north", bloodGroup: A_NEG,
  component: PLATELETS, parLevel: 30}) { status } }"""


def test_amplify_js_subscribes_through_the_realtime_endpoint_and_hears_the_shortage(tmp_path: Path) -> None:
    node = shutil.which("node")
    assert node, "Node is needed for the Amplify JS example (the machine has Node 20)"
    assert (ROOT / "node_modules" / "aws-amplify").is_dir(), "run `make test`: it installs aws-amplify"
    stack = Stack(tmp_path / "state", tls=True)
    ready = tmp_path / "ready"
    with stack.running():
        env = {
            **os.environ,
            "TOKEN": stack.token("hospital"),
            "BLOODBANK_API": f"{stack.url}/graphql",
            "NODE_EXTRA_CA_CERTS": str(stack.certificate),
            "SITE": "site-north",
            "COUNT": "1",
            "READY_FILE": str(ready),
        }
        client = subprocess.Popen(
            [node, str(EXAMPLE)], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            deadline = time.monotonic() + 60
            while not ready.exists():
                assert client.poll() is None, client.communicate()
                assert time.monotonic() < deadline, "Amplify never got its subscription acknowledged"
                time.sleep(0.1)
            body = stack.gql(THRESHOLD, stack.token("admin"))
            assert "errors" not in body, body
            out, err = client.communicate(timeout=30)
        finally:
            if client.poll() is None:
                client.kill()
                client.communicate()
    assert client.returncode == 0, err
    [line] = out.splitlines()
    alert = json.loads(line)
    assert (alert["siteId"], alert["bloodGroup"], alert["component"]) == ("site-north", "A_NEG", "PLATELETS")
    assert alert["status"] in {"AMBER", "RED"}
    assert alert["threshold"] == 30
