"""Start and stop the API server as a child process group; wait until it answers.

The parent binds the socket (so a busy port is reported at once, and port 0 picks a free one) and
hands it to the child. The child runs in its own process group and gets SIGKILL if `mprtune serve`
dies (PR_SET_PDEATHSIG): stopping kills the whole group, so nothing outlives the command. The API
key travels only in the child's environment: never on a command line, in a file or in a log.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from mprtune.errors import MprtuneError
from mprtune.io import atomic_write, tail
from mprtune.launch.backends.local import die_with_parent, kill_group
from mprtune.launch.env import venv_bin
from mprtune.serve.target import ServeTarget, api_yaml

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_MAX_TOKENS_LIMIT = 4096
READY_TIMEOUT_S = 900.0


@dataclass(frozen=True)
class ServeOptions:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT  # 0: a free port
    api_key: str | None = field(default=None, repr=False)
    max_tokens_limit: int = DEFAULT_MAX_TOKENS_LIMIT
    ready_timeout_s: float = READY_TIMEOUT_S


@dataclass
class RunningServer:
    process: subprocess.Popen
    target: ServeTarget
    host: str
    port: int
    config: Path
    log: Path
    start_seconds: float  # spawn to first answer of /v1/models
    has_key: bool

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v1"

    @property
    def pid(self) -> int:
        return self.process.pid


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_options(options: ServeOptions, max_new_tokens: int | None = None) -> None:
    """Refuse an exposed server without a key, a bad port, a token cap below compare's (before any loading)."""
    if not is_loopback(options.host) and not options.api_key:
        raise MprtuneError(
            f"--host {options.host}: binding a non-loopback address without an API key would let "
            f"anyone on the network use the model; pass --api-key (or env MPRTUNE_API_KEY), or "
            f"keep the default --host {DEFAULT_HOST}"
        )
    if not 0 <= options.port <= 65535:
        raise MprtuneError(f"--port {options.port}: expected 0 (a free port) to 65535")
    if max_new_tokens is not None and options.max_tokens_limit < max_new_tokens:
        raise MprtuneError(
            f"--max-tokens-limit {options.max_tokens_limit} is below the max_new_tokens compare used "
            f"({max_new_tokens}); raise it"
        )


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, or one clear error (port in use, address not on this machine)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise MprtuneError(f"--host {host}: cannot resolve it ({error.strerror})") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: TIME_WAIT is not "in use"
    try:
        sock.bind(address)
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRINUSE:
            raise MprtuneError(
                f"--port {port}: already in use on {host}; stop what listens there, or pick another "
                f"port (--port 0 picks a free one)"
            ) from None
        if error.errno == errno.EACCES:
            raise MprtuneError(
                f"--port {port}: permission denied on {host} (ports below 1024 need root); use a port above 1023"
            ) from None
        raise MprtuneError(f"--host {host} --port {port}: cannot bind ({error.strerror})") from None
    sock.listen(128)
    return sock


def child_env(target: ServeTarget, options: ServeOptions) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("API_KEY", None)  # an inherited API_KEY must not silently protect (or expose) this server
    env.pop("MPRTUNE_API_KEY", None)  # the child needs the key once, as API_KEY
    if options.api_key:
        env["API_KEY"] = options.api_key
    env.update(
        {
            "API_MODEL_NAME": target.served_name,
            "API_HOST": options.host,  # informational: the socket is already bound
            "PATH": f"{venv_bin()}{os.pathsep}{env.get('PATH', '')}",
            "DISABLE_VERSION_CHECK": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.setdefault("API_VERBOSE", "0")  # LLaMA-Factory logs every request body (users' text) at 1
    return env


def _probe(url: str, api_key: str | None, timeout_s: float) -> int | None:
    """HTTP status of GET url, None while nothing answers."""
    request = urllib.request.Request(url)
    if api_key:
        request.add_header("Authorization", f"Bearer {api_key}")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, OSError, TimeoutError):
        return None


def _failure(server: RunningServer, what: str) -> MprtuneError:
    lines = [line for line in tail(server.log, 60).splitlines() if line.strip()]
    last = next(
        (line.strip() for line in reversed(lines) if "Error" in line or "error" in line),
        lines[-1].strip() if lines else "",
    )
    return MprtuneError(f"server for {server.target.served_name} {what} (log {server.log}): {last or 'no output'}")


def start_server(target: ServeTarget, options: ServeOptions) -> RunningServer:
    """Render the config, spawn the server on a bound socket, return once /v1/models answers 200."""
    check_options(options, target.max_new_tokens)
    sock = bind_socket(options.host, options.port)
    port = sock.getsockname()[1]
    folder = target.serve_folder
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "api.yaml"
    atomic_write(config, api_yaml(target))
    log = folder / "server.log"
    command = [
        sys.executable,
        "-m",
        "mprtune.serve.app",
        str(config),
        "--fd",
        str(sock.fileno()),
        "--max-tokens-limit",
        str(options.max_tokens_limit),
    ]
    started = time.perf_counter()
    try:
        with log.open("ab") as out:
            out.write(
                f"\n===== mprtune serve {target.served_name} on {options.host}:{port} at "
                f"{time.strftime('%Y-%m-%d %H:%M:%S')} =====\n".encode()
            )
            out.flush()
            process = subprocess.Popen(
                command,
                env=child_env(target, options),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                pass_fds=(sock.fileno(),),
                preexec_fn=die_with_parent,
            )
    finally:
        sock.close()  # the child holds its own copy; the port is freed when it exits
    server = RunningServer(process, target, options.host, port, config, log, 0.0, bool(options.api_key))
    try:
        wait_ready(server, options.api_key, options.ready_timeout_s)
    except BaseException:
        stop_server(server)
        raise
    server.start_seconds = time.perf_counter() - started
    return server


def wait_ready(server: RunningServer, api_key: str | None, timeout_s: float) -> None:
    probe_host = "127.0.0.1" if server.host in ("0.0.0.0", "localhost") else server.host
    probe_host = "::1" if probe_host == "::" else probe_host
    url = f"http://{f'[{probe_host}]' if ':' in probe_host else probe_host}:{server.port}/v1/models"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise _failure(server, f"exited with code {server.process.returncode} while loading")
        status = _probe(url, api_key, timeout_s=2.0)
        if status == 200:
            return
        if status is not None and status != 200:
            raise _failure(server, f"answered /v1/models with HTTP {status}")
        time.sleep(0.3)
    raise _failure(server, f"did not answer within {timeout_s:.0f} s")


def stop_server(server: RunningServer, grace_s: float = 10.0) -> None:
    """SIGTERM the server's process group (uvicorn shuts down), then SIGKILL anything left."""
    if server.process.returncode is None:
        kill_group(server.process, grace_s)


@contextmanager
def serving(target: ServeTarget, options: ServeOptions) -> Iterator[RunningServer]:
    server = start_server(target, options)
    try:
        yield server
    finally:
        stop_server(server)


@contextmanager
def stop_signals_as_interrupt() -> Iterator[None]:
    """SIGTERM (systemd, docker stop, kill) and SIGINT stop the server as cleanly as Ctrl-C does.

    SIGINT gets its handler explicitly: a shell script that starts `mprtune serve ... &` hands it
    SIGINT ignored, and Python keeps an inherited "ignore", so `kill -INT` would do nothing.
    """
    import signal

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def serve_until_interrupted(
    target: ServeTarget, options: ServeOptions, on_ready: Callable[[RunningServer], None]
) -> None:
    """Serve until Ctrl-C/SIGTERM (KeyboardInterrupt reaches the caller after the group is stopped)."""
    with stop_signals_as_interrupt(), serving(target, options) as server:
        on_ready(server)
        wait_until_stopped(server)


def wait_until_stopped(server: RunningServer) -> None:
    """Block while the server runs; raises if it dies on its own (Ctrl-C reaches the caller)."""
    while server.process.poll() is None:
        time.sleep(0.5)
    raise _failure(server, f"exited with code {server.process.returncode}")


def usage_examples(server: RunningServer) -> tuple[str, str]:
    """(curl, Python) snippets that work as pasted (the key read from $MPRTUNE_API_KEY, never shown)."""
    import json
    import shlex

    name = server.target.served_name
    content = server.target.variant.task.prompt + "..."
    body = json.dumps({"model": name, "temperature": 0, "messages": [{"role": "user", "content": content}]})
    auth = ' -H "Authorization: Bearer $MPRTUNE_API_KEY"' if server.has_key else ""
    curl = (
        f"curl -s {server.base_url}/chat/completions -H 'Content-Type: application/json'{auth} \\\n"
        f"  -d {shlex.quote(body)}"
    )
    key = 'os.environ["MPRTUNE_API_KEY"]' if server.has_key else '"unused"'
    python = (
        f"import os\nfrom openai import OpenAI\n\n"
        f"client = OpenAI(base_url={json.dumps(server.base_url)}, api_key={key})\n"
        f"reply = client.chat.completions.create(model={json.dumps(name)}, temperature=0, messages=[\n"
        f'    {{"role": "user", "content": {json.dumps(content)}}}])\n'
        f"print(reply.choices[0].message.content)"
    )
    return curl, python
