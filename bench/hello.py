"""Throughput of a hello-JSON route: nbroutes in a real kernel vs a bare Tornado handler in the same kernel.

One ipykernel is started with jupyter_client. In it, ``%load_ext nbroutes``
serves ``%%route /api/hello`` on port A, and a plain ``tornado.web.RequestHandler``
answering the same JSON listens on port B, on the same event loop. wrk loads
them alternately (A then B, then B then A, ...) so both see the same machine
noise, and the result is the ratio nbroutes/bare: the median of the per-round
ratios of requests per second. The target is a ratio of at least 0.90. Per server it also
reports p50/p99 latency, the CPU time the serving process spent per request and the 1-minute
load average at the end of each run, and saves the figures as docs/benchmarks/hello.json for
bench/chart.py.

    .venv/bin/python bench/hello.py            # full run; rewrites its section of docs/benchmarks.md
    .venv/bin/python bench/hello.py --quick    # 5 rounds of 2 s
    .venv/bin/python bench/hello.py --check    # smoke test: both answer under wrk; writes nothing

Needs wrk (``sudo apt-get install wrk``). Exit status: 0 on success (whether or
not the target was met), 1 when a server does not answer or a load run fails,
2 when wrk is missing.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import http.client
import json
import os
import platform
import queue
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "benchmarks.md"
#: Where each script saves its figures (one JSON file per script), read by bench/chart.py.
RESULTS = ROOT / "docs" / "benchmarks"
SECTION = "## Hello JSON: nbroutes in the kernel vs bare Tornado"
PATH = "/api/hello"
TARGET = 0.90
WRK_FIX = "sudo apt-get install wrk   (or: make bench, which installs it)"

ROUTE_CELL = '%%route /api/hello\ndef GET(req):\n    return {"hello": "world"}\n'

BARE_CELL = """\
import tornado.web

class Hello(tornado.web.RequestHandler):
    def get(self):
        self.write({"hello": "world"})

_bench_bare_server = tornado.web.Application([(r"/api/hello", Hello)]).listen({port}, "127.0.0.1")
"""

VERSIONS_CELL = """\
import json as _j, sys as _s, platform as _p, tornado as _t, ipykernel as _k, IPython as _i, nbroutes as _n
print("BENCH-VERSIONS " + _j.dumps({
    "python": _p.python_version(), "implementation": _p.python_implementation(),
    "tornado": _t.version, "ipykernel": _k.__version__, "ipython": _i.__version__, "nbroutes": _n.__version__,
    "loop": type(__import__("asyncio").get_event_loop()).__module__,
}))
"""


class BenchError(Exception):
    """The benchmark could not run; the message says why."""


# -- the kernel ----------------------------------------------------------------------------------------


class Kernel:
    """One ipykernel, started and stopped with jupyter_client."""

    def __init__(self, env: dict[str, str]) -> None:
        from jupyter_client.manager import KernelManager

        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel(env=env)
        self.kc = self.km.client()
        self.kc.start_channels()
        try:
            self.kc.wait_for_ready(timeout=60)
        except RuntimeError as exc:
            self.shutdown()
            raise BenchError(f"the kernel did not start: {exc}") from exc

    @property
    def pid(self) -> int | None:
        provisioner = getattr(self.km, "provisioner", None)
        process = getattr(provisioner, "process", None)
        return getattr(process, "pid", None)

    def run(self, code: str, timeout: float = 60) -> str:
        """Execute ``code``; returns what it printed. Raises BenchError when the cell fails."""
        out: list[str] = []

        def hook(msg: dict[str, Any]) -> None:
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                out.append(content["text"])
            elif kind in ("execute_result", "display_data", "update_display_data"):
                out.append(content.get("data", {}).get("text/plain", "") + "\n")
            elif kind == "error":
                out.append("\n".join(content.get("traceback", [])) + "\n")

        try:
            reply = self.kc.execute_interactive(code, timeout=timeout, output_hook=hook, stop_on_error=False)
        except (TimeoutError, queue.Empty) as exc:
            raise BenchError(f"the kernel did not answer within {timeout}s running:\n{code}") from exc
        text = "".join(out)
        if reply["content"]["status"] != "ok":
            content = reply["content"]
            raise BenchError(
                f"cell failed ({content.get('ename')}: {content.get('evalue')}):\n{code}\n{_strip_ansi(text)}"
            )
        return text

    def shutdown(self) -> None:
        try:
            self.kc.stop_channels()
        finally:
            if self.km.has_kernel:
                self.km.shutdown_kernel(now=False)


def _strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(port: int, path: str = PATH, timeout: float = 5) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def when_up(name: str, port: int, call: Callable[[int], Any], wait: float = 10) -> Any:
    """``call(port)``, retried while the server at ``port`` is not listening yet.

    Raises BenchError if it still does not answer after ``wait`` seconds.
    """
    deadline = time.monotonic() + wait
    while True:
        try:
            return call(port)
        except OSError as exc:
            if time.monotonic() > deadline:
                raise BenchError(f"{name} on 127.0.0.1:{port} does not answer: {exc}") from exc
            time.sleep(0.2)


def check_answers(ports: dict[str, int]) -> dict[str, bytes]:
    """Both servers answer 200 with the JSON {"hello": "world"}; returns their raw bodies."""
    bodies: dict[str, bytes] = {}
    for name, port in ports.items():
        status, headers, body = when_up(name, port, get)
        if status != 200:
            raise BenchError(f"{name} on 127.0.0.1:{port}{PATH} answered {status}: {body[:200]!r}")
        try:
            value = json.loads(body)
        except ValueError as exc:
            raise BenchError(f"{name} answered a body that is not JSON: {body[:200]!r}") from exc
        if value != {"hello": "world"}:
            raise BenchError(f"{name} answered {value!r}, not {{'hello': 'world'}}")
        if not headers.get("content-type", "").startswith("application/json"):
            raise BenchError(f"{name} answered Content-Type {headers.get('content-type')!r}")
        bodies[name] = body
    return bodies


# -- wrk ---------------------------------------------------------------------------------------------

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def _ms(value: str) -> float:
    """A wrk duration ("812.00us", "3.21ms", "1.02s", "1.00m") in milliseconds."""
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m|h)", value.strip())
    if m is None:
        raise ValueError(f"not a wrk duration: {value!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    socket_errors: int
    #: CPU time (user + system) the serving process and its children spent per request, in microseconds;
    #: None when the run was not given a process to watch.
    cpu_us: float | None = None
    #: The machine's 1-minute load average at the end of the run.
    load1: float = float("nan")


def parse_wrk(output: str) -> WrkResult:
    """Requests/sec, the 50% and 99% latencies and the error counts from ``wrk --latency``."""
    rps = re.search(r"^Requests/sec:\s+([0-9.]+)", output, re.M)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.M)
    total = re.search(r"^\s+(\d+) requests in", output, re.M)
    if not (rps and p50 and p99 and total):
        raise BenchError(f"could not read wrk's output:\n{output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return WrkResult(
        rps=float(rps.group(1)),
        p50_ms=_ms(p50.group(1)),
        p99_ms=_ms(p99.group(1)),
        requests=int(total.group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(g) for g in errors.groups()) if errors else 0,
    )


def wrk(port: int, connections: int, duration: float, path: str = PATH, script: str | None = None) -> WrkResult:
    secs = max(1, round(duration))
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{secs}s", "--latency"]
    cmd += ["-s", script] if script else []
    cmd.append(f"http://127.0.0.1:{port}{path}")
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=secs + 60, check=False)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"wrk did not finish: {' '.join(cmd)}") from exc
    if done.returncode != 0:
        raise BenchError(f"wrk failed ({done.returncode}): {' '.join(cmd)}\n{done.stdout}{done.stderr}")
    result = parse_wrk(done.stdout)
    if result.requests == 0 or result.non_2xx == result.requests:
        raise BenchError(f"no successful request on port {port}:\n{done.stdout}")
    return result


def wrk_version() -> str:
    done = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    first = (done.stdout or done.stderr).splitlines()
    return first[0].split(" Copyright")[0].strip() if first else "wrk"


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` and its live descendants (Kernel Gateway's kernel, workers).

    Raises BenchError when the process is gone.
    """
    import psutil

    try:
        root = psutil.Process(pid)
        total = 0.0
        for process in [root, *root.children(recursive=True)]:
            try:
                times = process.cpu_times()
            except psutil.NoSuchProcess:  # a child that ended meanwhile
                continue
            total += times.user + times.system
        return total
    except psutil.NoSuchProcess as exc:
        raise BenchError(f"the serving process {pid} exited") from exc


def measured_wrk(
    port: int, pid: int | None, connections: int, duration: float, path: str = PATH, script: str | None = None
) -> WrkResult:
    """``wrk(...)``, with the CPU time ``pid`` spent per request and the load average at the end."""
    before = cpu_seconds(pid) if pid is not None else 0.0
    result = wrk(port, connections, duration, path, script)
    if pid is not None:
        result.cpu_us = (cpu_seconds(pid) - before) / result.requests * 1e6
    result.load1 = os.getloadavg()[0]
    return result


# -- the machine ----------------------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_revision(source: Path = ROOT) -> str:
    """The commit of the checkout at ``source`` whose nbroutes is measured, and whether nbroutes/ has changes."""
    try:
        rev = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(source), "status", "--porcelain", "--", "nbroutes"], capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{rev} (nbroutes/ with uncommitted changes)" if dirty else rev


def host() -> dict[str, str]:
    """The machine's rows of a section's table: cores this process may use, the CPU, the OS kernel."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 0
    return {"nproc": str(cpus), "cpu": cpu_model(), "kernel (uname -r)": platform.release()}


def load_average() -> str:
    """The 1-minute load average now, for the row that says how busy the machine was before a run."""
    return f"{os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "nan"


def machine(kernel_versions: dict[str, str]) -> dict[str, str]:
    return {
        **host(),
        "python": f"{kernel_versions['python']} ({kernel_versions['implementation']})",
        "tornado": kernel_versions["tornado"],
        "ipykernel": kernel_versions["ipykernel"],
        "ipython": kernel_versions["ipython"],
        "nbroutes": f"{kernel_versions['nbroutes']} at {git_revision()}",
        "wrk": wrk_version(),
        "load average before the run (1 min)": load_average(),
    }


# -- the run ---------------------------------------------------------------------------------------------


@dataclass
class Summary:
    """The runs of every round, by system; the first system is nbroutes, the second the main baseline."""

    rounds: list[dict[str, WrkResult]]
    names: list[str]

    def median(self, name: str, field: str) -> float:
        values = [getattr(r[name], field) for r in self.rounds]
        values = [v for v in values if v is not None]
        return statistics.median(values) if values else float("nan")

    def ratios_to(self, name: str) -> list[float]:
        """Per round, nbroutes' req/s over ``name``'s."""
        return [r[self.names[0]].rps / r[name].rps for r in self.rounds]

    def ratio_to(self, name: str) -> float:
        """The median of the per-round ratios nbroutes / ``name`` of requests per second."""
        return statistics.median(self.ratios_to(name))

    @property
    def ratios(self) -> list[float]:
        return self.ratios_to(self.names[1])

    @property
    def ratio(self) -> float:
        return self.ratio_to(self.names[1])


def load(
    ports: dict[str, int],
    rounds: int,
    duration: float,
    connections: int,
    warmup: float,
    path: str = PATH,
    script: str | None = None,
    pids: dict[str, int | None] | None = None,
) -> Summary:
    """``rounds`` rounds of one wrk run per system, one system at a time, the order reversed every round.

    ``ports`` lists nbroutes first and its main baseline second; ``pids`` gives the process serving each system,
    whose CPU time per request is measured.
    """
    names = list(ports)
    width = max(len(name) for name in names)
    pids = pids or {}
    if warmup > 0:
        for name in names:
            print(f"warm-up  {name:<{width}} {warmup:.0f}s", flush=True)
            wrk(ports[name], connections, warmup, path, script)
    results: list[dict[str, WrkResult]] = []
    for i in range(rounds):
        order = names if i % 2 == 0 else names[::-1]
        got: dict[str, WrkResult] = {}
        for name in order:
            r = measured_wrk(ports[name], pids.get(name), connections, duration, path, script)
            if r.non_2xx or r.socket_errors:
                print(f"  note: {name}: {r.non_2xx} non-2xx responses, {r.socket_errors} socket errors", flush=True)
            got[name] = r
            cpu = f"  CPU {r.cpu_us:6.0f} us/req" if r.cpu_us is not None else ""
            print(
                f"round {i + 1}/{rounds}  {name:<{width}} {r.rps:>10,.0f} req/s"
                f"  p50 {r.p50_ms:7.2f} ms  p99 {r.p99_ms:7.2f} ms{cpu}  load {r.load1:.2f}",
                flush=True,
            )
        results.append(got)
        ratio = got[names[0]].rps / got[names[1]].rps
        print(f"round {i + 1}/{rounds}  ratio {names[0]}/{names[1]} = {ratio:.3f}", flush=True)
    return Summary(results, names)


#: (system, label) pairs in the order of the table: nbroutes, its main baseline, then any others.
Labels = Sequence[tuple[str, str]]

HELLO_LABELS: Labels = (
    ("nbroutes", "nbroutes `%%route` in the kernel"),
    ("bare Tornado", "bare Tornado `RequestHandler`, same kernel"),
)


def table(summary: Summary, labels: Labels = HELLO_LABELS) -> str:
    """The markdown results table: per system its medians, and nbroutes' req/s over its req/s."""
    first = summary.names[0]
    rows = [
        f"| system | req/s (median) | {first} / this | p50 latency | p99 latency | CPU per request "
        "| load average (1 min) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, label in labels:
        ratio = "" if name == first else f"{summary.ratio_to(name):.2f}"
        if name == summary.names[1]:
            ratio = f"**{ratio}**"
        cpu = summary.median(name, "cpu_us")
        rows.append(
            f"| {label} | {summary.median(name, 'rps'):,.0f} | {ratio} | {summary.median(name, 'p50_ms'):.2f} ms "
            f"| {summary.median(name, 'p99_ms'):.2f} ms | {'' if cpu != cpu else f'{cpu:,.0f} µs'} "
            f"| {summary.median(name, 'load1'):.2f} |"
        )
    per_round = ", ".join(f"{r:.3f}" for r in summary.ratios)
    spread = f"(min {min(summary.ratios):.3f}, max {max(summary.ratios):.3f})"
    return "\n".join(rows) + f"\n\nPer-round ratios of req/s {first} / {summary.names[1]}: {per_round} {spread}."


MEASURES = """\
Each figure is the median over the rounds. CPU per request is the user + system CPU time the serving process
(with its children) spent during a run, over the requests wrk counted: it shows where a system spends its work
even when the two cores, shared with wrk, cap the requests per second. The load average is the machine's
1-minute figure at the end of each run; wrk and the server under load account for about 2 of it on their own,
so a figure well above 2 says something else was using the machine during the round."""


def section(summary: Summary, info: dict[str, str], args: argparse.Namespace, bodies: dict[str, bytes]) -> str:
    met = summary.ratio >= TARGET
    verdict = (
        f"**Met**: {summary.ratio:.3f} >= {TARGET:.2f}."
        if met
        else f"**Not met**: {summary.ratio:.3f} < {TARGET:.2f} (see the profile below, if one was added by hand)."
    )
    machine_rows = "\n".join(f"| {k} | {v} |" for k, v in info.items())
    date = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"""{SECTION}

What is measured: the cost of nbroutes' per-request path (the `HTTPMessageDelegate` in `nbroutes/server.py`,
`App.dispatch` in `nbroutes/app.py`, and turning the handler's dict into a JSON `Response`) relative to the
usual way to answer the same request with Tornado, a `RequestHandler`. One real ipykernel (started with
`jupyter_client`) serves both, on its own asyncio loop:

- **nbroutes**: `%load_ext nbroutes`, then the cell
  `%%route /api/hello` / `def GET(req): return {{"hello": "world"}}`;
- **bare Tornado**: `class Hello(tornado.web.RequestHandler): def get(self): self.write({{"hello": "world"}})`,
  served by `tornado.web.Application([(r"/api/hello", Hello)]).listen(port, "127.0.0.1")` in the same kernel.

Both answer `GET /api/hello` with 200 and the JSON `{{"hello": "world"}}`
(nbroutes: `{bodies["nbroutes"].decode()}`, {len(bodies["nbroutes"])} bytes;
Tornado: `{bodies["bare Tornado"].decode()}`, {len(bodies["bare Tornado"])} bytes), both with an ETag and a Date header.
wrk (`-t1 -c{args.connections} -d{args.duration:.0f}s --latency`, keep-alive) loads them one at a time, alternately:
after a {args.warmup:.0f} s warm-up of each, {args.rounds} rounds of nbroutes then Tornado, the order swapped every
round, so slow spells of this noisy machine fall on both. One wrk thread and the single-threaded kernel share
the {info["nproc"]} cores. The ratio is the median of the per-round ratios of requests per second, which is
the number to compare across machines (absolute req/s are not). {MEASURES}

Run of {date}:

{table(summary)}

A ratio above 1 is possible: nbroutes' adapter sits below `RequestHandler` (an `HTTPMessageDelegate`, see
`docs/architecture.md`), so it skips that class's per-request machinery while adding its own routing and ETag.

Target: nbroutes serves at least {TARGET:.0%} of bare Tornado's requests per second (ratio >= {TARGET:.2f}).
{verdict}

Machine:

| | |
|---|---|
{machine_rows}

To reproduce, from the repository root:

```sh
sudo apt-get install wrk      # Debian/Ubuntu; `make bench` installs it when missing
make bench                    # = .venv/bin/python bench/hello.py, after installing the test extras into .venv
```

`bench/hello.py --rounds N --duration SECS --connections C` changes the run, `--quick` makes it short
(5 rounds of 2 s), and `--check` is a smoke test (both servers answer under wrk; writes nothing). Each full run
rewrites this section of `docs/benchmarks.md`, leaving the others alone, and `docs/benchmarks/hello.json`, which
`bench/chart.py` draws.
"""


def write_section(text: str, path: Path = DOCS, title: str = SECTION) -> None:
    """Put ``text`` (which starts with ``title``) in ``path``, replacing that section and keeping the rest."""
    header = (
        "# Benchmarks\n\n"
        "Each section is written by a script in `bench/`; rerun it rather than editing the figures by hand.\n"
        "The machines are noisy, so each benchmark loads its targets alternately in the same run\n"
        "and reports ratios.\n\n"
        "![Requests per second of nbroutes and of each baseline, one panel per benchmark](benchmarks.png)\n\n"
    )
    old = path.read_text() if path.exists() else header
    lines = old.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == title), None)
    body = text.rstrip("\n") + "\n"
    if start is None:
        new = old.rstrip("\n") + "\n\n" + body
    else:
        end = next((j for j in range(start + 1, len(lines)) if lines[j].startswith("## ")), len(lines))
        after = "".join(lines[end:])
        new = "".join(lines[:start]) + body + ("\n" + after if after else "")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(new)


def save_results(
    benchmark: str,
    summary: Summary,
    labels: Labels,
    args: argparse.Namespace,
    info: dict[str, str],
    title: str,
    target: float | None,
    second_line: Sequence[str] = (),
) -> Path:
    """Write the figures of a throughput run as ``docs/benchmarks/<benchmark>.json`` (what bench/chart.py draws).

    ``second_line`` names the systems shown as context rather than as the comparison (the h11 figures).
    """
    first = summary.names[0]
    systems = [
        {
            "name": name,
            "label": label,
            "rps": summary.median(name, "rps"),
            "ratio": None if name == first else summary.ratio_to(name),
            "p50_ms": summary.median(name, "p50_ms"),
            "p99_ms": summary.median(name, "p99_ms"),
            "cpu_us_per_request": _finite(summary.median(name, "cpu_us")),
            "load1": _finite(summary.median(name, "load1")),
            "second_line": name in second_line,
            "rps_by_round": [r[name].rps for r in summary.rounds],
        }
        for name, label in labels
    ]
    record = {
        "benchmark": benchmark,
        "kind": "throughput",
        "title": title.removeprefix("## "),
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "rounds": args.rounds,
        "duration_s": args.duration,
        "connections": args.connections,
        "ratio_of": [first, summary.names[1]],
        "ratio": summary.ratio,
        "target": target,
        "systems": systems,
        "machine": info,
    }
    return write_json(benchmark, record)


def write_json(benchmark: str, record: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{benchmark}.json"
    path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    return path


def _finite(value: float) -> float | None:
    return None if value != value else value  # NaN (nothing measured) is not valid JSON


def parse_args(argv: list[str] | None, description: str, baseline: str) -> argparse.Namespace:
    """The options every benchmark in bench/ takes, with --quick and --check applied."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help=f"rounds of (nbroutes, {baseline}) runs (default 5)")
    parser.add_argument("--duration", type=float, default=5, help="seconds per wrk run (default 5)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument("--warmup", type=float, default=None, help="seconds of warm-up per server (default 3)")
    parser.add_argument("--quick", action="store_true", help="5 rounds of 2 s, 1 s warm-up")
    parser.add_argument("--check", action="store_true", help="smoke test: one 1 s round, exit 0 if both answer")
    parser.add_argument(
        "--no-docs", action="store_true", help=f"do not rewrite {DOCS.relative_to(ROOT)} or its JSON figures"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.duration = max(args.rounds, 5), 2
        args.warmup = 1 if args.warmup is None else args.warmup
    if args.check:
        args.rounds, args.duration, args.connections, args.warmup, args.no_docs = 1, 1, 4, 0, True
    if args.warmup is None:
        args.warmup = 3
    if args.rounds < 1 or args.duration < 1 or args.connections < 1:
        parser.error("--rounds, --duration and --connections must be at least 1")
    return args


def report(
    summary: Summary,
    args: argparse.Namespace,
    verdict: str,
    text: Callable[[], str],
    title: str,
    render: Callable[[Summary], str] = table,
    save: Callable[[], Path] | None = None,
) -> int:
    """Print the results as ``render`` lays them out (or the smoke test's line), write ``text()`` as section
    ``title`` and ``save()`` the JSON figures; returns 0."""
    if args.check:
        print(f"bench: check passed (ratio {summary.ratio:.2f} in a {args.duration:.0f} s round; not a measurement)")
        return 0
    print()
    print(render(summary))
    print(f"\n{verdict}")
    if not args.no_docs:
        write_section(text(), DOCS, title)
        print(f"bench: wrote the section {title!r} of {DOCS.relative_to(ROOT)}")
        if save is not None:
            print(f"bench: wrote {save().relative_to(ROOT)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv, __doc__.split("\n\n")[0], "bare")

    if shutil.which("wrk") is None:
        print(f"bench: wrk is not installed; install it with:\n    {WRK_FIX}", file=sys.stderr)
        return 2

    port_a, port_b = free_port(), free_port()
    env = {**os.environ, "NBROUTES_PORT": str(port_a), "NBROUTES_HOST": "127.0.0.1", "PYTHONUNBUFFERED": "1"}
    print("bench: starting a python3 kernel", flush=True)
    kernel: Kernel | None = None
    try:
        kernel = Kernel(env)
        out = kernel.run("%load_ext nbroutes\nimport nbroutes\nprint('BENCH-URL', nbroutes.url())")
        m = re.search(r"BENCH-URL http://127\.0\.0\.1:(\d+)", out)
        if m is None:
            raise BenchError(f"%load_ext nbroutes did not start a server:\n{_strip_ansi(out)}")
        port_a = int(m.group(1))
        kernel.run(ROUTE_CELL)
        kernel.run(BARE_CELL.replace("{port}", str(port_b)))
        versions_out = kernel.run(VERSIONS_CELL)
        versions = json.loads(versions_out.split("BENCH-VERSIONS ", 1)[1].splitlines()[0])
        ports = {"nbroutes": port_a, "bare Tornado": port_b}
        bodies = check_answers(ports)
        for name, port in ports.items():
            print(f"bench: {name:<13} http://127.0.0.1:{port}{PATH} -> {bodies[name].decode()}", flush=True)
        info = machine(versions)
        pids = dict.fromkeys(ports, kernel.pid)  # both are served by the kernel's process
        summary = load(ports, args.rounds, args.duration, args.connections, args.warmup, pids=pids)
        check_answers(ports)  # still alive after the load
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    finally:
        if kernel is not None:
            kernel.shutdown()

    met = "met" if summary.ratio >= TARGET else "NOT met"
    verdict = f"target ratio >= {TARGET:.2f}: {met} ({summary.ratio:.3f})"
    return report(
        summary,
        args,
        verdict,
        lambda: section(summary, info, args, bodies),
        SECTION,
        save=lambda: save_results("hello", summary, HELLO_LABELS, args, info, SECTION, TARGET),
    )


if __name__ == "__main__":
    sys.exit(main())
