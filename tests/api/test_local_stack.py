"""`bloodbank serve` end to end, as a newcomer uses it: start, sign in, query, stop, start again.

Runs the real stack (DynamoDB Local on Java, a moto server, uvicorn) as a child process on free ports.
"""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from bloodbank.local.engines import free_port

pytestmark = pytest.mark.stack
LIST = "{ listDonors(limit: 5) { items { id bloodGroup } nextToken } }"


class Stack:
    def __init__(self, data_dir: Path, *, tls: bool = False) -> None:
        self.data_dir = data_dir
        self.tls = tls
        self.port, self.ddb_port, self.moto_port = free_port(), free_port(), free_port()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def certificate(self) -> Path:
        """The self-signed certificate ``serve --tls`` makes in the state folder."""
        return self.data_dir / "tls-cert.pem"

    def _ssl(self) -> ssl.SSLContext | None:
        return ssl.create_default_context(cafile=str(self.certificate)) if self.tls else None

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bloodbank.cli", *args, "--data-dir", str(self.data_dir)],
            capture_output=True,
            text=True,
            timeout=120,
            check=check,
        )

    def serve_command(self) -> list[str]:
        return [
            sys.executable, "-m", "bloodbank.cli", "serve", "--port", str(self.port),
            "--dynamodb-port", str(self.ddb_port), "--moto-port", str(self.moto_port),
            "--data-dir", str(self.data_dir), *(["--tls"] if self.tls else []),
        ]  # fmt: skip

    @contextmanager
    def running(self) -> Iterator[subprocess.Popen[str]]:
        process = subprocess.Popen(
            self.serve_command(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=os.environ.copy(),
        )
        try:
            self.wait_healthy(process)
            yield process
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)  # what Ctrl-C does
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    process.kill()
                    raise
            process.stdout.close()  # type: ignore[union-attr]

    def wait_healthy(self, process: subprocess.Popen[str]) -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"serve exited: {process.stdout.read()}")  # type: ignore[union-attr]
            try:
                if self.tls and not self.certificate.exists():
                    raise OSError("no certificate yet")
                with urllib.request.urlopen(f"{self.url}/health", timeout=2, context=self._ssl()) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.5)
        raise AssertionError("the stack did not become healthy")

    def gql(
        self, query: str, token: str | None = None, variables: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        headers = {"content-type": "application/json", **({"Authorization": token} if token else {})}
        request = urllib.request.Request(
            f"{self.url}/graphql",
            data=json.dumps({"query": query, "variables": variables or {}}).encode(),
            headers=headers,
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30, context=self._ssl()) as response:
            body: dict[str, Any] = json.loads(response.read())
            return body

    def token(self, role: str) -> str:
        return self.cli("token", "--as", role).stdout.strip()


ME = "{ me { id email bloodGroup phone dateOfBirth } }"


def wait_for(read: Callable[[], Any], done: Callable[[Any], bool], seconds: float = 60) -> Any:
    """``read()`` until ``done`` says so (work the local workers do in the background)."""
    deadline = time.monotonic() + seconds
    while True:
        value = read()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.5)


def port_is_free(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def test_serve_sign_in_query_stop_and_find_the_data_again(tmp_path: Path) -> None:
    stack = Stack(tmp_path / "state")
    with stack.running():
        staff = stack.token("staff")
        listed = stack.gql(LIST, staff)["data"]["listDonors"]
        assert len(listed["items"]) == 5
        assert all(d["bloodGroup"] for d in listed["items"])
        assert listed["nextToken"]
        anonymous = stack.gql(LIST)
        assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"

        created = stack.gql(
            "mutation($i: RegisterDonorInput!) { registerDonor(input: $i) { id } }",
            staff,
            {
                "i": {
                    "firstName": "Persis",
                    "lastName": "Tent",
                    "email": "persist@example.org",
                    "siteId": "site-south",
                }
            },
        )["data"]["registerDonor"]
        demo_donor = stack.gql(ME, stack.token("donor"))["data"]["me"]
        assert demo_donor["email"] == "donor@example.org"
        assert (demo_donor["phone"], demo_donor["dateOfBirth"]) == ("+13125559999", "1988-04-12")  # via KMS
        # Staff record a donation: eligibility checked, a DIN of site-north's facility, quarantined units.
        donation = stack.gql(
            "mutation($i: RecordDonationInput!) { recordDonation(input: $i) { din units { status } } }",
            staff,
            {"i": {"donorId": demo_donor["id"], "donationType": "PLATELETS", "haemoglobinGdl": 13.1}},
        )
        assert "errors" not in donation, donation
        assert donation["data"]["recordDonation"]["din"].startswith("W1234")
        assert donation["data"]["recordDonation"]["units"] == [{"status": "QUARANTINED"}]
        # The donor uploads a consent form with a presigned POST and downloads it again.
        donor_token = stack.token("donor")
        ticket = stack.gql(
            "mutation($i: RequestDonorDocumentUploadInput!) {"
            " requestDonorDocumentUpload(input: $i) { url fields key } }",
            donor_token,
            {"i": {"donorId": demo_donor["id"], "kind": "CONSENT_FORM", "contentType": "application/pdf"}},
        )["data"]["requestDonorDocumentUpload"]
        pdf = b"%PDF-1.4 consent\n%%EOF\n"
        upload = httpx.post(
            ticket["url"],
            data=json.loads(ticket["fields"]),
            files={"file": ("c.pdf", pdf, "application/pdf")},
        )
        assert upload.status_code in (200, 201, 204), upload.text
        documents = stack.gql("{ me { documents { kind versions { downloadUrl } } } }", donor_token)["data"][
            "me"
        ]["documents"]
        assert [d["kind"] for d in documents] == ["CONSENT_FORM"]
        assert httpx.get(documents[0]["versions"][0]["downloadUrl"]).content == pdf
        hospital = stack.gql("{ listDonors { items { id } } }", stack.token("hospital"))
        assert hospital["errors"][0]["extensions"]["code"] == "FORBIDDEN"

        # The seeded stock board, and a hospital's order allocated by staff, end to end.
        hospital_token = stack.token("hospital")
        board = stack.gql(
            '{ stockLevels(siteId: "site-north", component: RED_CELLS) { bloodGroup available status } }',
            hospital_token,
        )["data"]["stockLevels"]
        assert {level["status"] for level in board} == {"GREEN", "AMBER", "RED"}
        ordered = stack.gql(
            "mutation { createBloodRequest(input: {bloodGroup: O_POS, component: RED_CELLS, quantity: 2,"
            " urgency: URGENT}) { id status hospitalId } }",
            hospital_token,
        )["data"]["createBloodRequest"]
        assert ordered["hospitalId"] == "hosp-st-mary"
        fulfilled = stack.gql(
            "mutation($id: ID!) { fulfillBloodRequest(id: $id) { status units { bloodGroup status } } }",
            staff,
            {"id": ordered["id"]},
        )["data"]["fulfillBloodRequest"]
        assert fulfilled["status"] == "FULFILLED"
        assert [u["status"] for u in fulfilled["units"]] == ["RESERVED", "RESERVED"]
        seen = stack.gql("{ listBloodRequests { items { id status } } }", hospital_token)["data"]
        assert {"id": ordered["id"], "status": "FULFILLED"} in seen["listBloodRequests"]["items"]

        # A real WebSocket client (graphql-transport-ws) hears of the shortage the mutation causes.
        from websockets.sync.client import connect

        ws_url = stack.url.replace("http://", "ws://") + "/graphql"
        with connect(ws_url, subprotocols=["graphql-transport-ws"], open_timeout=10) as ws:
            ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": hospital_token}}))
            assert json.loads(ws.recv(timeout=10))["type"] == "connection_ack"
            subscription = (
                'subscription { onShortageAlert(siteId: "site-north", bloodGroup: AB_POS) {'
                " siteId bloodGroup component status previousStatus available threshold } }"
            )
            ws.send(json.dumps({"id": "s1", "type": "subscribe", "payload": {"query": subscription}}))
            time.sleep(0.5)  # the server registers the subscription
            raised = stack.gql(
                'mutation { setStockThreshold(input: {siteId: "site-north", bloodGroup: AB_POS,'
                " component: RED_CELLS, parLevel: 50}) { status } }",
                stack.token("admin"),
            )
            assert raised["data"]["setStockThreshold"]["status"] == "AMBER"
            message = json.loads(ws.recv(timeout=10))
            assert message["type"] == "next"
            alert = message["payload"]["data"]["onShortageAlert"]
            assert (alert["status"], alert["previousStatus"], alert["threshold"]) == ("AMBER", "GREEN", 50)

        # A campaign end to end: a template, a CSV uploaded with the presigned form and imported by the
        # upload's S3 notification, launched, sent through SQS and SES by the local workers.
        template = stack.gql(
            "mutation($i: CreateEmailTemplateInput!) { createEmailTemplate(input: $i) { id } }",
            staff,
            {"i": {"name": "Thanks", "subject": "Thank you, {{ first_name }}",
                   "text": "Dear {{ first_name }}, thank you. Stop: {{ unsubscribe_url }}"}},
        )["data"]["createEmailTemplate"]["id"]  # fmt: skip
        list_id = stack.gql('mutation { createRecipientList(input: {name: "Regulars"}) { id } }', staff)[
            "data"
        ]["createRecipientList"]["id"]
        form = stack.gql(
            "mutation($l: ID!) { requestRecipientUpload(listId: $l) { url fields } }", staff, {"l": list_id}
        )["data"]["requestRecipientUpload"]
        csv = "email,first_name\nann@example.org,Ann\nbob@example.org,Bob\nnot-an-address,Nobody\n"
        posted = httpx.post(
            form["url"], data=json.loads(form["fields"]), files={"file": ("l.csv", csv, "text/csv")}
        )
        assert posted.status_code in (200, 201, 204), posted.text
        imported = wait_for(
            lambda: stack.gql(
                "query($l: ID!) { getRecipientList(id: $l) { status counts { imported invalid } } }",
                staff,
                {"l": list_id},
            )["data"]["getRecipientList"],
            lambda got: got["status"] == "READY",
        )
        assert imported["counts"] == {"imported": 2, "invalid": 1}
        campaign = stack.gql(
            "mutation($i: CreateCampaignInput!) { createCampaign(input: $i) { id } }",
            staff,
            {"i": {"name": "Thanks", "templateId": template, "listId": list_id}},
        )["data"]["createCampaign"]["id"]
        assert (
            stack.gql("mutation($c: ID!) { launchCampaign(id: $c) { status } }", staff, {"c": campaign})[
                "data"
            ]["launchCampaign"]["status"]
            == "SENDING"
        )
        sent = wait_for(
            lambda: stack.gql(
                "query($c: ID!) { getCampaign(id: $c) { status stats { recipients sent queued } } }",
                staff,
                {"c": campaign},
            )["data"]["getCampaign"],
            lambda got: got["status"] == "SENT",
        )
        assert sent["stats"] == {"recipients": 2, "sent": 2, "queued": 0}

        # Seeding again while running changes nothing, and a second stack is refused with a clear message.
        count = len(
            stack.gql("{ listDonors(limit: 100) { items { id } } }", staff)["data"]["listDonors"]["items"]
        )
        assert stack.cli("seed").returncode == 0
        again = stack.gql("{ listDonors(limit: 100) { items { id } } }", staff)["data"]["listDonors"]["items"]
        assert len(again) == count
        # The client examples are exercised against a stack of their own: tests/api/test_client_examples.py

        second = subprocess.run(
            stack.serve_command(), capture_output=True, text=True, timeout=60, check=False
        )
        assert second.returncode == 2
        assert "already in use" in second.stderr
        assert "Traceback" not in second.stderr

    # Ctrl-C stopped every child: all three ports are free again.
    assert all(port_is_free(p) for p in (stack.port, stack.ddb_port, stack.moto_port))
    assert "not running" in stack.cli("token", "--as", "staff", check=False).stderr

    with stack.running():
        staff = stack.token("staff")
        found = stack.gql("query($id: ID!) { getDonor(id: $id) { lastName } }", staff, {"id": created["id"]})
        assert found["data"]["getDonor"] == {"lastName": "Tent"}
        # The demo donor signs in to a fresh user pool and is still the same donor record.
        # Its personal fields still decrypt: the local KMS key survived the moto restart.
        assert stack.gql(ME, stack.token("donor"))["data"]["me"] == demo_donor
