"""Starting the two servers as real processes on loopback, for the parity, fault and
browser suites: the FastAPI service (``python -m deepsearch_stream serve``) and the axum
binary (``deepsearch-server``), with the same flags."""

from __future__ import annotations

import os
import resource
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent
BACKENDS = ("fastapi", "axum")

CORPUS = {
    "tokio.md": "<!-- url: https://tokio.rs/ -->\n# Tokio\n\n"
    "Tokio is an asynchronous runtime for the Rust programming language. "
    "It provides the building blocks needed for writing network applications.\n",
    "tea.md": "<!-- url: https://tea.example/green -->\n# Green tea\n\n"
    "Steep green tea leaves for two minutes in water just below boiling.\n",
    "udp.md": "<!-- url: https://net.example/udp -->\n# UDP\n\n"
    "UDP is a connectionless transport protocol without delivery guarantees.\n",
}


def write_corpus(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in CORPUS.items():
        (root / name).write_text(text, encoding="utf-8")
    return root


def server_binary() -> Path:
    """The axum binary: ``DEEPSEARCH_SERVER_BIN``, else the release build in ``target/``."""
    configured = os.environ.get("DEEPSEARCH_SERVER_BIN")
    path = Path(configured) if configured else ROOT / "target" / "release" / "deepsearch-server"
    if not path.is_file():
        raise RuntimeError(
            f"axum server binary not found at {path}: build it with "
            "`cargo build --release --bin deepsearch-server` (make test does)"
        )
    return path


def command(backend: str, args: Sequence[str]) -> list[str]:
    if backend == "fastapi":
        return [sys.executable, "-m", "deepsearch_stream", "serve", *args]
    if backend == "axum":
        return [str(server_binary()), *args]
    raise ValueError(backend)


@dataclass
class Server:
    backend: str
    url: str
    process: subprocess.Popen[bytes]

    def terminate(self, timeout: float = 15.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise


@contextmanager
def running(
    backend: str,
    args: Sequence[str],
    env: dict[str, str] | None = None,
    timeout: float = 60.0,
    stderr: IO[bytes] | None = None,
    fd_limit: int | None = None,
) -> Iterator[Server]:
    """Starts a server on a free loopback port; yields once it says it is listening.
    Its log goes to ``stderr`` (default: this process's); ``fd_limit`` caps its file
    descriptors."""
    full_env = {**os.environ, **(env or {})}

    def limit_fds() -> None:
        if fd_limit is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (fd_limit, fd_limit))

    proc = subprocess.Popen(
        command(backend, ["--host", "127.0.0.1", "--port", "0", *args]),
        stdout=subprocess.PIPE,
        stderr=stderr,
        env=full_env,
        cwd=ROOT,
        preexec_fn=limit_fds,
    )
    assert proc.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    url = None
    buffered = b""
    while url is None:
        left = deadline - time.monotonic()
        if left <= 0 or proc.poll() is not None:
            proc.kill()
            raise RuntimeError(f"{backend} server did not start: {buffered!r}")
        if selector.select(left):
            chunk = os.read(proc.stdout.fileno(), 4096)
            buffered += chunk
            for line in buffered.decode(errors="replace").splitlines():
                if "listening on http://" in line:
                    url = line.rsplit(" ", 1)[-1].strip()
    server = Server(backend, url, proc)
    # Keep reading what the server prints (uvicorn's access log goes to stdout): a full
    # pipe would block the server mid-request.
    drain = threading.Thread(target=_discard, args=(proc.stdout,), daemon=True)
    drain.start()
    try:
        yield server
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        drain.join(10)
        proc.stdout.close()


def _discard(stream: IO[bytes]) -> None:
    while stream.read(65536):
        pass


class HangingEngine:
    """An HTTP server (a SearXNG, for the loop) that accepts requests and never answers;
    records when each client hangs up."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.accepted = threading.Event()
        self.closed_at: list[float] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._hold, args=(conn,), daemon=True).start()

    def _hold(self, conn: socket.socket) -> None:
        with conn:
            self.accepted.set()
            while True:
                try:
                    if not conn.recv(65536):
                        break
                except OSError:
                    break
            self.closed_at.append(time.monotonic())


def run_command(
    command: Sequence[str], *args: str | Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """One terminal command of either face (``command``: the program and its leading
    arguments), its output captured."""
    return subprocess.run(
        [*command, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
    )


def assert_ctrl_c_cancels_the_search(
    command: Sequence[str], program: str, hanging: HangingEngine
) -> None:
    """``command search`` on a hanging engine, interrupted once its plan is shown: exit
    130, ``<program> search: cancelled``, no answer, and the engine request closed."""
    proc = subprocess.Popen(
        [*command, "search", "What is Tokio?", "--engines", "searxng"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "SEARXNG_URL": hanging.url},
    )
    assert hanging.accepted.wait(30), "the engine request never arrived"
    assert proc.stdout is not None
    seen = ""
    while "Round 1 plan:" not in seen:  # the display is live: the plan is out already
        line = proc.stdout.readline()
        assert line, f"the plan never came: {seen!r}"
        seen += line
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, (seen + out, err)
    assert "Answer:" not in out
    assert err.strip() == f"{program} search: cancelled", err
    deadline = time.monotonic() + 5
    while not hanging.closed_at:
        assert time.monotonic() < deadline, "the engine request was left open"
        time.sleep(0.01)
    assert hanging.closed_at[0] >= sent
