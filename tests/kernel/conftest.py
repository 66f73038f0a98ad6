"""Real kernels for the notebook side: an ipykernel per module (or per test), driven over ZMQ, and HTTP to its port.

The real-kernel tests start kernels through ``Kernel`` (via the ``kernel`` or ``new_kernel``
fixtures, which mark them ``kernel``) and talk to nbroutes only from the outside: execute requests on the
shell channel, messages on iopub, and ``http.client`` requests to the port the
kernel serves on. Nothing here imports nbroutes.
"""

from __future__ import annotations

import os
import queue
import re
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.manager import KernelManager

# The socket and HTTP helpers are tests/support.py's; the kernel tests import them from here too.
from tests.support import (  # noqa: F401
    HOST,
    HTTPResult,
    free_port,
    http_request,
    listen_on,
    port_is_free,
    refuses_connections,
)

START_TIMEOUT = 60
EXECUTE_TIMEOUT = 30

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass
class ExecResult:
    """What one execute request produced."""

    status: str
    execution_count: int | None
    reply: dict[str, Any]
    stdout: str = ""
    stderr: str = ""
    #: ename, evalue and traceback (ANSI codes stripped) from the reply, when status is "error". For a
    #: UsageError (checked with ipykernel 7) the reply is status "error", ename "UsageError", evalue the
    #: message and no traceback; no error message goes to iopub, IPython prints "UsageError: ..." to stderr.
    error: dict[str, Any] | None = None
    #: display_data and execute_result contents (data, metadata, transient) parented to this request.
    displays: list[dict[str, Any]] = field(default_factory=list)
    #: every iopub message read while waiting for this request, whatever its parent.
    messages: list[dict[str, Any]] = field(default_factory=list)

    @property
    def error_text(self) -> str:
        """Everything an error showed: ename, evalue, traceback and stderr (where IPython prints UsageError)."""
        parts = [self.stderr]
        if self.error is not None:
            parts += [self.error.get("ename", ""), self.error.get("evalue", ""), *self.error.get("traceback", [])]
        return "\n".join(parts)

    @property
    def card(self) -> str:
        """The model id of the (single) widget this cell displayed: a route or middleware card."""
        ids = [
            d["data"]["application/vnd.jupyter.widget-view+json"]["model_id"]
            for d in self.displays
            if "application/vnd.jupyter.widget-view+json" in d.get("data", {})
        ]
        assert len(ids) == 1, f"expected one widget display, got {self.displays!r}"
        return ids[0]

    @property
    def label(self) -> str:
        """How nbroutes names this cell, e.g. "In [3]"."""
        return f"In [{self.execution_count}]"


class Kernel:
    """A real ipykernel with NBROUTES_PORT set, and the iopub messages it sent."""

    def __init__(self, log_path: Path, port: int | None = None, env: dict[str, str] | None = None) -> None:
        # Hold the port while jupyter_client picks the kernel's own ports, so that it cannot pick this one.
        reserved = None
        if port is None:
            reserved = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            reserved.bind((HOST, 0))
            port = int(reserved.getsockname()[1])
        self.port = port
        #: NBROUTES_PORT in the kernel's environment.
        self.env_port = port
        self.log_path = log_path
        extra_env = env
        env = {
            k: v for k, v in os.environ.items() if not k.startswith("NBROUTES_") and k != "JUPYTERHUB_SERVICE_PREFIX"
        }
        env["NBROUTES_PORT"] = str(self.port)
        env.update(extra_env or {})
        self.iopub: list[dict[str, Any]] = []
        #: The result of ``%load_ext nbroutes`` when the ``kernel`` fixture ran it.
        self.load_result: ExecResult | None = None
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in shutdown
        self.km = KernelManager(kernel_name="python3")
        try:
            self.km.start_kernel(env=env, stdout=self._log, stderr=self._log)
            self.kc = self.km.client()
            self.kc.start_channels()
            self.kc.wait_for_ready(timeout=START_TIMEOUT)
        except BaseException:
            self.shutdown()
            raise
        finally:
            if reserved is not None:
                reserved.close()

    # -- messaging ---------------------------------------------------------------------
    def _next_iopub(self, timeout: float) -> dict[str, Any] | None:
        try:
            msg = self.kc.get_iopub_msg(timeout=max(timeout, 0.001))
        except queue.Empty:
            return None
        self.iopub.append(msg)
        return msg

    def execute(
        self,
        code: str,
        metadata: dict[str, Any] | None = None,
        timeout: float = EXECUTE_TIMEOUT,
        subshell_id: str | None = None,
    ) -> ExecResult:
        """Run ``code`` as a cell, with execute_request ``metadata`` (cellId, tags), and gather what it produced.

        With ``subshell_id`` it runs on that subshell's thread (ipykernel 7), not the main one.
        """
        content = {
            "code": code,
            "silent": False,
            "store_history": True,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": False,
        }
        msg = self.kc.session.msg("execute_request", content, metadata=metadata or {})
        if subshell_id is not None:
            msg["header"]["subshell_id"] = subshell_id
        msg_id = msg["header"]["msg_id"]
        self.kc.shell_channel.send(msg)
        deadline = time.monotonic() + timeout
        seen: list[dict[str, Any]] = []
        while True:
            m = self._next_iopub(deadline - time.monotonic())
            if m is None:
                raise TimeoutError(f"no idle status for {code!r} within {timeout}s; saw {seen!r}\n{self.log_text()}")
            seen.append(m)
            if (
                m["parent_header"].get("msg_id") == msg_id
                and m["msg_type"] == "status"
                and m["content"]["execution_state"] == "idle"
            ):
                break
        while True:
            remaining = deadline - time.monotonic()
            try:
                reply = self.kc.get_shell_msg(timeout=max(remaining, 0.001))
            except queue.Empty:
                raise TimeoutError(f"no execute_reply for {code!r} within {timeout}s") from None
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        rc = reply["content"]
        result = ExecResult(rc["status"], rc.get("execution_count"), rc, messages=seen)
        if rc["status"] == "error":
            result.error = {
                "ename": rc.get("ename", ""),
                "evalue": rc.get("evalue", ""),
                "traceback": [_ANSI.sub("", line) for line in rc.get("traceback", [])],
            }
        for m in seen:
            if m["parent_header"].get("msg_id") != msg_id:
                continue
            if m["msg_type"] == "stream":
                if m["content"]["name"] == "stdout":
                    result.stdout += m["content"]["text"]
                else:
                    result.stderr += m["content"]["text"]
            elif m["msg_type"] in ("display_data", "execute_result"):
                result.displays.append(m["content"])
        return result

    def ok(self, code: str, metadata: dict[str, Any] | None = None, subshell_id: str | None = None) -> ExecResult:
        """Execute ``code`` and assert it ran without an error."""
        result = self.execute(code, metadata, subshell_id=subshell_id)
        assert result.status == "ok", f"cell failed: {code!r}\n{result.error_text}"
        return result

    def drain(self, timeout: float = 0.2) -> None:
        """Read whatever iopub messages arrive within ``timeout`` into the log."""
        deadline = time.monotonic() + timeout
        while self._next_iopub(deadline - time.monotonic()) is not None:
            pass

    # -- widgets -----------------------------------------------------------------------
    def widget_state(self, model_id: str) -> dict[str, Any]:
        """A widget model's state as the kernel sent it: its comm_open, then every update, in order."""
        state: dict[str, Any] = {}
        for m in self.iopub:
            content = m["content"]
            if content.get("comm_id") != model_id:
                continue
            data = content.get("data") or {}
            if m["msg_type"] == "comm_open" or (
                m["msg_type"] == "comm_msg" and data.get("method") in ("update", "echo_update")
            ):
                state.update(data.get("state") or {})
        return state

    def wait_for_state(
        self, model_id: str, check: Callable[[dict[str, Any]], Any], timeout: float = 10, what: str = ""
    ) -> dict[str, Any]:
        """Read iopub until ``check(state)`` of widget ``model_id`` is true; returns that state.

        Raises AssertionError with the last state seen when it does not happen within ``timeout``.
        """
        deadline = time.monotonic() + timeout
        while True:
            state = self.widget_state(model_id)
            if check(state):
                return state
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"widget {model_id} never got {what or check!r} in {timeout}s; state: {state!r}")
            self._next_iopub(min(remaining, 0.2))

    def widget_text(self, model_id: str) -> str:
        """The text a widget shows, with its children's: values, descriptions and output areas."""
        state = self.widget_state(model_id)
        parts = [str(state[k]) for k in ("description", "value") if isinstance(state.get(k), str) and state[k]]
        for output in state.get("outputs") or ():
            if output.get("output_type") == "stream":
                parts.append(output["text"])
            elif output.get("output_type") == "error":
                parts.append("\n".join(output.get("traceback", [])))
            else:
                parts.append(str(output.get("data", {}).get("text/plain", "")))
        for child in state.get("children") or ():
            parts.append(self.widget_text(str(child).removeprefix("IPY_MODEL_")))
        return "\n".join(parts)

    def wait_for_card(self, model_id: str, contains: str, timeout: float = 10) -> str:
        """The text of card ``model_id`` (summary, stats and output) once it contains ``contains``.

        Raises AssertionError with the card's last text if that does not happen within ``timeout``.
        """
        deadline = time.monotonic() + timeout
        while True:
            text = self.widget_text(model_id)
            if contains in text:
                return text
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"card {model_id} never showed {contains!r} in {timeout}s; it shows:\n{text}")
            self._next_iopub(min(remaining, 0.2))

    def find_widget(self, model_id: str, dom_class: str) -> str:
        """The model id of the first widget under ``model_id`` (itself included) with CSS class ``dom_class``.

        Raises LookupError if there is none.
        """
        state = self.widget_state(model_id)
        if dom_class in (state.get("_dom_classes") or ()):
            return model_id
        for child in state.get("children") or ():
            try:
                return self.find_widget(str(child).removeprefix("IPY_MODEL_"), dom_class)
            except LookupError:
                continue
        raise LookupError(f"no widget with class {dom_class!r} under {model_id}")

    def create_subshell(self) -> str:
        """A new subshell (ipykernel 7), the thread JupyterLab >= 4.4 sends widget messages to."""
        msg = self.kc.session.msg("create_subshell_request", {})
        self.kc.control_channel.send(msg)
        deadline = time.monotonic() + EXECUTE_TIMEOUT
        while True:
            reply = self.kc.get_control_msg(timeout=max(deadline - time.monotonic(), 0.001))
            if reply["parent_header"].get("msg_id") == msg["header"]["msg_id"]:
                assert reply["content"]["status"] == "ok", reply["content"]
                return str(reply["content"]["subshell_id"])

    def send_comm(self, comm_id: str, data: dict[str, Any], subshell_id: str | None = None) -> None:
        """A comm_msg from the "frontend", on the main shell or on ``subshell_id``'s thread."""
        msg = self.kc.session.msg("comm_msg", {"comm_id": comm_id, "data": data})
        if subshell_id is not None:
            msg["header"]["subshell_id"] = subshell_id
        self.kc.shell_channel.send(msg)

    def click(self, model_id: str, subshell_id: str | None = None) -> None:
        """Click a Button widget, as JupyterLab does."""
        self.send_comm(model_id, {"method": "custom", "content": {"event": "click"}}, subshell_id)

    def set_widget(self, model_id: str, state: dict[str, Any], subshell_id: str | None = None) -> None:
        """Change widget state as if the user typed or picked it in JupyterLab."""
        self.send_comm(model_id, {"method": "update", "state": state, "buffer_paths": []}, subshell_id)

    # -- HTTP --------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        body: bytes | str | Iterable[bytes] | None = None,
        headers: dict[str, str] | None = None,
        port: int | None = None,
    ) -> HTTPResult:
        """An HTTP request from the test process to the kernel's server (``self.port`` unless ``port``)."""
        return http_request(self.port if port is None else port, method, path, body, headers)

    def get(self, path: str, port: int | None = None) -> HTTPResult:
        return self.request("GET", path, port=port)

    # -- lifetime ----------------------------------------------------------------------
    def log_text(self) -> str:
        """What the kernel process wrote to its own stdout/stderr (not iopub)."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def shutdown(self) -> None:
        kc = getattr(self, "kc", None)
        if kc is not None:
            kc.stop_channels()
        try:
            if self.km.has_kernel:
                self.km.shutdown_kernel(now=False)
        finally:
            self._log.close()


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kernel]:
    """A kernel shared by the tests of a module, with ``%load_ext nbroutes`` run (its result in ``load_result``).

    Tests sharing it use their own route paths and cell ids.
    """
    k = Kernel(tmp_path_factory.mktemp("kernel") / "kernel.log")
    try:
        k.load_result = k.execute("%load_ext nbroutes")
        assert k.load_result.status == "ok", k.load_result.error_text
        yield k
    finally:
        k.shutdown()


@pytest.fixture
def new_kernel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Kernel]]:
    """``new_kernel(port=None, env=None)`` starts a fresh kernel (nbroutes not loaded) with NBROUTES_PORT=port (a
    free one by default) and ``env`` added; every kernel it started is shut down after the test."""
    started: list[Kernel] = []

    def start(port: int | None = None, env: dict[str, str] | None = None) -> Kernel:
        k = Kernel(tmp_path_factory.mktemp("kernel") / "kernel.log", port, env)
        started.append(k)
        return k

    yield start
    for k in started:
        k.shutdown()


@pytest.fixture
def http() -> Callable[..., HTTPResult]:
    """``http(port, method, path, body=None, headers=None)`` from the test process."""
    return http_request
