"""Throughput of a Kernel Gateway notebook: ``nbroutes serve`` vs real Jupyter Kernel Gateway.

The same notebook, tests/kg_notebooks/people.ipynb (Kernel Gateway's notebook-http mode,
``# GET /hello`` printing ``hello world``), is served twice, each in its own process:
by ``jupyter kernelgateway --KernelGatewayApp.api=kernel_gateway.notebook_http`` (one
kernel, each request sent to it over ZeroMQ) and by ``nbroutes serve --no-access-log``
(the cells run in the server's own process). wrk loads ``GET /hello`` on them alternately
(A then B, then B then A, ...) and the result is the median of the per-round ratios of
requests per second, nbroutes/Kernel Gateway. There is no target: the ratio is the figure.

wrk uses 8 connections unless --connections says otherwise (the other benchmarks use 32):
Kernel Gateway answers one request at a time through its kernel, about 100 req/s, so at 32
connections every request queues behind ~31 others and its latencies measure the queue.

    .venv/bin/python bench/kernel_gateway.py            # full run; rewrites its section of docs/benchmarks.md
    .venv/bin/python bench/kernel_gateway.py --quick    # fewer, shorter rounds
    .venv/bin/python bench/kernel_gateway.py --check    # smoke test: both answer under wrk; writes nothing

Needs wrk and jupyter_kernel_gateway (``make bench`` installs them). Exit status as bench/hello.py:
0 on success, 1 when a server does not answer or a load run fails, 2 when wrk is missing.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hello import (  # noqa: E402
    MEASURES,
    ROOT,
    WRK_FIX,
    BenchError,
    Summary,
    free_port,
    get,
    load,
    machine,
    parse_args,
    report,
    save_results,
    when_up,
)
from hello import (  # noqa: E402
    table as results_table,
)
from validated_post import _version, stop  # noqa: E402

SECTION = "## Kernel Gateway notebook: nbroutes serve vs Kernel Gateway"
NOTEBOOK = ROOT / "tests" / "kg_notebooks" / "people.ipynb"
PATH = "/hello"
EXPECTED = b"hello world\n"
CONNECTIONS = 8
NAMES = ("nbroutes", "Kernel Gateway")
START_WAIT = 60


def with_default_connections(argv: list[str] | None) -> list[str]:
    """``argv`` with ``--connections 8`` in front unless it sets the connections itself."""
    args = list(sys.argv[1:] if argv is None else argv)
    if any(a.startswith("--conn") for a in args):
        return args
    return ["--connections", str(CONNECTIONS), *args]


def environment(tmp: Path) -> dict[str, str]:
    """This environment with Jupyter's and IPython's dirs in ``tmp``, as tests/headless/test_kernelgateway.py does."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    for name in ("JUPYTER_RUNTIME_DIR", "JUPYTER_DATA_DIR", "JUPYTER_CONFIG_DIR", "IPYTHONDIR"):
        env[name] = str(tmp / name.lower())
    env.pop("KERNEL_GATEWAY", None)
    return env


def start(command: list[str], env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def kernel_gateway_command(port: int) -> list[str]:
    return [
        sys.executable, "-m", "jupyter", "kernelgateway",
        "--KernelGatewayApp.api=kernel_gateway.notebook_http",
        f"--KernelGatewayApp.seed_uri={NOTEBOOK}",
        f"--KernelGatewayApp.port={port}",
        "--KernelGatewayApp.port_retries=0",
        "--KernelGatewayApp.ip=127.0.0.1",
        "--KernelGatewayApp.log_level=WARN",  # no line per request, as nbroutes' --no-access-log
    ]  # fmt: skip


def nbroutes_command(port: int) -> list[str]:
    return [sys.executable, "-m", "nbroutes", "serve", str(NOTEBOOK), "--port", str(port), "--no-access-log"]


def check_answers(
    ports: dict[str, int], processes: dict[str, tuple[subprocess.Popen[bytes], Path]], wait: float = 10
) -> dict[str, bytes]:
    """Both servers answer ``GET /hello`` with 200, ``text/plain`` and ``hello world``."""
    bodies: dict[str, bytes] = {}
    for name, port in ports.items():
        process, log = processes[name]
        if process.poll() is not None:
            raise BenchError(f"{name} exited with status {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            status, headers, body = when_up(name, port, lambda p: get(p, PATH, timeout=30), wait)
        except BenchError as exc:
            raise BenchError(f"{exc}\n{name}'s log:\n{log.read_text()[-3000:]}") from exc
        if status != 200 or body != EXPECTED:
            raise BenchError(f"{name}: GET 127.0.0.1:{port}{PATH} answered {status}: {body[:300]!r}")
        if not headers.get("content-type", "").startswith("text/plain"):
            raise BenchError(f"{name} answered Content-Type {headers.get('content-type')!r}")
        bodies[name] = body
    return bodies


def versions() -> dict[str, str]:
    """What ``hello.machine`` wants, from this interpreter: both servers run on it."""
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "tornado": _version("tornado"),
        "ipykernel": _version("ipykernel"),
        "ipython": _version("ipython"),
        "nbroutes": _version("nbroutes"),
    }


def _show(body: bytes) -> str:
    return body.decode().replace("\n", "\\n")


LABELS = (
    (NAMES[0], "`nbroutes serve people.ipynb`"),
    (NAMES[1], "`jupyter kernelgateway` (notebook-http, 1 kernel; CPU includes its kernel's)"),
)


def table(summary: Summary) -> str:
    return results_table(summary, LABELS)


def section(summary: Summary, info: dict[str, str], args: argparse.Namespace, bodies: dict[str, bytes]) -> str:
    machine_rows = "\n".join(f"| {k} | {v} |" for k, v in info.items())
    date = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    connections_note = (
        "8 connections rather than the 32 of the sections above: Kernel Gateway answers one request at a time\n"
        "through its kernel, so at 32 every request waits behind about 31 others (p50 around 330 ms for the same\n"
        "~100 req/s) and its latencies would measure that queue"
        if args.connections == CONNECTIONS
        else f"{args.connections} connections, set with `--connections`"
    )
    p99s = {name: [r[name].p99_ms for r in summary.rounds] for name in NAMES}
    p99_spread = "; ".join(f"{name} {min(v):.2f} to {max(v):.2f} ms" for name, v in p99s.items())
    return f"""{SECTION}

What is measured: a notebook written for Jupyter Kernel Gateway's `notebook-http` mode, served as it is by
Kernel Gateway and by `nbroutes serve` (see `docs/kernel-gateway.md`). The notebook is
`tests/kg_notebooks/people.ipynb`; the endpoint loaded is its cell `# GET /hello` / `print("hello world")`.
Each server runs in its own process, from the same Python:

- **nbroutes**: `nbroutes serve tests/kg_notebooks/people.ipynb --port P --no-access-log`, which runs the cells
  in its own process, on the server's event loop;
- **Kernel Gateway**: `jupyter kernelgateway --KernelGatewayApp.api=kernel_gateway.notebook_http
  --KernelGatewayApp.seed_uri=tests/kg_notebooks/people.ipynb --KernelGatewayApp.port=P
  --KernelGatewayApp.ip=127.0.0.1 --KernelGatewayApp.log_level=WARN` (no log line per request, like
  `--no-access-log`), with its Jupyter directories in a temporary directory. It sends each request to its one
  kernel over ZeroMQ as an `execute_request` and waits for the kernel to go idle.

Before loading, both answer `GET /hello` with 200, `text/plain` and the same body
(nbroutes: `{_show(bodies["nbroutes"])}`; Kernel Gateway: `{_show(bodies["Kernel Gateway"])}`).
wrk (`-t1 -c{args.connections} -d{args.duration:.0f}s --latency`, keep-alive) loads them one at a time,
alternately: after a {args.warmup:.0f} s warm-up of each, {args.rounds} rounds of nbroutes then Kernel Gateway,
the order swapped every round. One wrk thread and the servers' processes (Kernel Gateway's and its kernel's,
or nbroutes') share the {info["nproc"]} cores. The ratio is the median of the per-round ratios of requests per
second. {MEASURES}

wrk uses {connections_note}.

Run of {date}:

{table(summary)}

p99 latency by round, lowest to highest: {p99_spread}.

There is no target: the point is the size of the gap, which comes from the round trip through the kernel
that nbroutes does not make (`docs/kernel-gateway.md`, "No queue behind a kernel").

Machine:

| | |
|---|---|
{machine_rows}

To reproduce, from the repository root:

```sh
make bench                                # installs wrk and the test and bench extras (jupyter_kernel_gateway
                                          # among them), then runs every script in bench/
.venv/bin/python bench/kernel_gateway.py  # this section only
```

`bench/kernel_gateway.py --rounds N --duration SECS --connections C` changes the run (default `-c {CONNECTIONS}`),
`--quick` makes it short (5 rounds of 2 s), and `--check` is a smoke test (both servers answer under wrk; writes
nothing). Each full run rewrites this section of `docs/benchmarks.md`, leaving the others alone, and
`docs/benchmarks/kernel_gateway.json`.
"""


def main(argv: list[str] | None = None) -> int:
    args = parse_args(with_default_connections(argv), __doc__.split("\n\n")[0], "Kernel Gateway")

    if shutil.which("wrk") is None:
        print(f"bench: wrk is not installed; install it with:\n    {WRK_FIX}", file=sys.stderr)
        return 2
    if _version("jupyter_kernel_gateway") == "not installed":
        print("bench: Kernel Gateway is not installed: pip install jupyter_kernel_gateway", file=sys.stderr)
        return 1

    ports = {NAMES[0]: free_port(), NAMES[1]: free_port()}
    processes: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
    with tempfile.TemporaryDirectory(prefix="nbroutes-bench-kg-") as tmp_name:
        tmp = Path(tmp_name)
        env = environment(tmp)
        try:
            print(f"bench: starting nbroutes serve and Kernel Gateway on {NOTEBOOK.relative_to(ROOT)}", flush=True)
            for name, command in ((NAMES[0], nbroutes_command), (NAMES[1], kernel_gateway_command)):
                log = tmp / f"{name.replace(' ', '-')}.log"
                processes[name] = (start(command(ports[name]), env, tmp, log), log)
            bodies = check_answers(ports, processes, wait=START_WAIT)
            for name, port in ports.items():
                print(f"bench: {name:<14} GET http://127.0.0.1:{port}{PATH} -> {bodies[name]!r}", flush=True)
            info = machine(versions())
            info["jupyter_kernel_gateway"] = _version("jupyter_kernel_gateway")
            info["jupyter_server"] = _version("jupyter_server")
            pids: dict[str, int | None] = {name: process.pid for name, (process, _) in processes.items()}
            summary = load(ports, args.rounds, args.duration, args.connections, args.warmup, PATH, None, pids)
            check_answers(ports, processes)  # still alive after the load
        except BenchError as exc:
            print(f"bench: {exc}", file=sys.stderr)
            return 1
        finally:
            for process, _ in processes.values():
                stop(process)

    verdict = f"ratio nbroutes/Kernel Gateway: {summary.ratio:.1f}"
    return report(
        summary,
        args,
        verdict,
        lambda: section(summary, info, args, bodies),
        SECTION,
        table,
        save=lambda: save_results("kernel_gateway", summary, LABELS, args, info, SECTION, None),
    )


if __name__ == "__main__":
    sys.exit(main())
