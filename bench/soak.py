"""Soak: a minute of crud traffic on notebooks/todo-api.ipynb, in a kernel and under ``nbroutes serve``.

The notebook's ``/api/todos`` resource (``nbroutes.crud`` over a SQLite table) is loaded by
wrk at 64 connections for a minute, each request alternately ``GET /api/todos?_size=20``
and ``POST /api/todos`` with a JSON todo, on two targets one after the other:

- **kernel**: one real ipykernel (jupyter_client) runs the notebook's code cells, those not
  tagged ``nbroutes:skip``, as ``nbroutes serve`` would; while wrk runs, the cell ``1+1`` is
  executed again and again through the kernel client, as a person working in the notebook would;
- **serve**: ``nbroutes serve todo-api.ipynb --no-access-log`` in its own process.

Each works on a copy of the notebook in a fresh temporary directory, so its database starts
with the notebook's two seed rows. Reported per target: requests, non-2xx responses and socket
errors, req/s, the RSS of the serving process at the start and end of the load (and its peak,
sampled), the rows written against the POSTs sent and, for the kernel, the p50/p99 time of the
trivial cell idle and under load. There is no target: the figures are what a soak shows.

    .venv/bin/python bench/soak.py                   # 60 s per target; rewrites its section of docs/benchmarks.md
    .venv/bin/python bench/soak.py --quick           # 10 s per target
    .venv/bin/python bench/soak.py --check           # smoke test: 2 s per target, fails on any error; writes nothing
    .venv/bin/python bench/soak.py --target serve    # one target only

Needs wrk (``make bench`` installs it). Exit status: 0 on success (errors under load are reported,
not failed, except with --check), 1 when a server does not answer or a load run fails, 2 when wrk
is missing.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import http.client
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hello import (  # noqa: E402
    DOCS,
    ROOT,
    WRK_FIX,
    BenchError,
    Kernel,
    WrkResult,
    _strip_ansi,
    free_port,
    machine,
    when_up,
    write_section,
    wrk,
)
from kernel_gateway import environment, start, versions  # noqa: E402
from validated_post import _version, stop  # noqa: E402

SECTION = "## Soak: a minute of crud traffic, in a kernel and under nbroutes serve"
NOTEBOOK = ROOT / "notebooks" / "todo-api.ipynb"
PATH = "/api/todos"
LIST = "/api/todos?_size=20"
SKIP_TAG = "nbroutes:skip"
TARGETS = ("kernel", "serve")
LABELS = {
    "kernel": "the notebook's cells in a real ipykernel",
    "serve": "`nbroutes serve todo-api.ipynb --no-access-log`",
}
#: Pause between two runs of the trivial cell: a person runs cells one at a time, not back to back.
CELL_GAP = 0.05
#: Runs of the trivial cell before the load (after two that warm it up).
IDLE_SAMPLES = 40
START_WAIT = 60

# One wrk thread, so one Lua state: n counts its requests, posts its POSTs. done() runs in wrk's
# main state after the load, so it reads the thread's count through setup()'s handle; thread:get
# reads globals, hence posts is not local.
LUA = """\
local n = 0
posts = 0
local json = {["Content-Type"] = "application/json"}
local threads = {}

setup = function(thread)
  table.insert(threads, thread)
end

request = function()
  n = n + 1
  if n % 2 == 0 then
    return wrk.format("GET", "@LIST@")
  end
  posts = posts + 1
  return wrk.format("POST", "@PATH@", json, '{"title":"soak ' .. n .. '","done":false}')
end

done = function(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do
    total = total + thread:get("posts")
  end
  local out = io.open("@POSTS_FILE@", "w")
  out:write(tostring(total))
  out:close()
end
"""


# -- what is measured ----------------------------------------------------------------------------------


def rss(pid: int) -> int:
    """Resident set size of ``pid`` in bytes: psutil when installed, else /proc/PID/status."""
    try:
        import psutil
    except ImportError:
        pass
    else:
        return int(psutil.Process(pid).memory_info().rss)
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024  # in kB
    raise BenchError(f"no VmRSS in /proc/{pid}/status")


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values``, nearest rank: an observed value, never an interpolation."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil without floats
    return ordered[int(rank) - 1]


def request(port: int, method: str, path: str, body: str | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def rows(port: int) -> int:
    """How many todos there are (``X-Total-Count`` of the list); checks the list answers 200 with JSON."""
    status, headers, raw = request(port, "GET", LIST)
    if status != 200:
        raise BenchError(f"GET 127.0.0.1:{port}{LIST} answered {status}: {raw[:300]!r}")
    if not isinstance(json.loads(raw), list) or "x-total-count" not in headers:
        raise BenchError(f"GET {LIST} answered no list or no X-Total-Count: {raw[:300]!r}")
    return int(headers["x-total-count"])


def check_answers(name: str, port: int, wait: float = 10) -> None:
    """The resource lists and creates: GET answers 200 with a list, POST 201 with the row, a bad body 422."""
    when_up(name, port, rows, wait)
    status, _, raw = request(port, "POST", PATH, '{"title":"check","done":false}')
    created = json.loads(raw) if status == 201 else None
    if not (isinstance(created, dict) and created.get("title") == "check"):
        raise BenchError(f"{name}: POST 127.0.0.1:{port}{PATH} answered {status}: {raw[:300]!r}")
    bad, _, _ = request(port, "POST", PATH, '{"title":""}')
    if bad != 422:
        raise BenchError(f"{name}: POST {PATH} with an empty title answered {bad}, not 422")


@dataclass
class Soak:
    """One target's run: wrk's figures, the serving process's memory, the rows, the trivial cell's times."""

    target: str
    result: WrkResult
    pid: int
    rss_start: int
    rss_end: int
    rss_peak: int
    rows_before: int
    rows_after: int
    posts_sent: int
    idle_ms: list[float] = field(default_factory=list)
    load_ms: list[float] = field(default_factory=list)

    @property
    def written(self) -> int:
        return self.rows_after - self.rows_before

    @property
    def errors(self) -> int:
        return self.result.non_2xx + self.result.socket_errors

    def writes_add_up(self, connections: int) -> bool:
        """Every POST sent made a row, give or take those in flight when wrk stopped (one per connection)."""
        return self.posts_sent - connections <= self.written <= self.posts_sent


def soak(target: str, port: int, pid: int, args: argparse.Namespace, tmp: Path, kernel: Kernel | None = None) -> Soak:
    """Load ``port`` with the GET/POST mix for ``args.duration`` seconds while sampling ``pid``'s RSS and, with a
    kernel, timing the trivial cell."""
    idle: list[float] = []
    if kernel is not None:
        for i in range(2 + args.idle_samples):
            began = time.perf_counter()
            out = kernel.run("1+1", timeout=30)
            if i >= 2:
                idle.append((time.perf_counter() - began) * 1000)
            if out.strip() != "2":
                raise BenchError(f"the cell 1+1 printed {out!r}")
            time.sleep(CELL_GAP)
    posts_file = tmp / f"{target}-posts.txt"
    lua = tmp / f"{target}.lua"
    lua.write_text(LUA.replace("@LIST@", LIST).replace("@PATH@", PATH).replace("@POSTS_FILE@", str(posts_file)))

    rows_before = rows(port)
    rss_start = rss_peak = rss(pid)
    outcome: dict[str, Any] = {}

    def load() -> None:
        try:
            outcome["result"] = wrk(port, args.connections, args.duration, PATH, str(lua))
        except BenchError as exc:
            outcome["error"] = exc

    loader = threading.Thread(target=load, name="wrk", daemon=True)
    print(f"bench: {target}: {args.duration:.0f} s of wrk -c{args.connections} on http://127.0.0.1:{port}", flush=True)
    loader.start()
    under_load: list[float] = []
    while loader.is_alive():
        if kernel is not None:
            began = time.perf_counter()
            kernel.run("1+1", timeout=30)
            if loader.is_alive():  # a run that ended after wrk did is not under load
                under_load.append((time.perf_counter() - began) * 1000)
            time.sleep(CELL_GAP)
        else:
            loader.join(timeout=1)
        rss_peak = max(rss_peak, rss(pid))
    if "error" in outcome:
        raise outcome["error"]
    rss_end = rss(pid)
    try:
        posts_sent = int(posts_file.read_text())
    except (OSError, ValueError) as exc:
        raise BenchError(f"wrk's Lua script did not write the POST count to {posts_file}: {exc}") from exc
    return Soak(
        target=target,
        result=outcome["result"],
        pid=pid,
        rss_start=rss_start,
        rss_end=rss_end,
        rss_peak=max(rss_peak, rss_end),
        rows_before=rows_before,
        rows_after=rows(port),  # also: it still answers after the load
        posts_sent=posts_sent,
        idle_ms=idle,
        load_ms=under_load,
    )


# -- the targets ---------------------------------------------------------------------------------------------


def notebook_cells(path: Path) -> list[str]:
    """The code cells ``nbroutes serve`` runs: all but those tagged nbroutes:skip."""
    nb = json.loads(path.read_text())
    cells = []
    for cell in nb["cells"]:
        if cell["cell_type"] != "code" or SKIP_TAG in cell.get("metadata", {}).get("tags", []):
            continue
        source = cell["source"]
        cells.append("".join(source) if isinstance(source, list) else source)
    return cells


def kernel_pid(kernel: Kernel) -> int:
    pid = kernel.pid or getattr(getattr(kernel.km, "kernel", None), "pid", None)
    if pid is None:
        raise BenchError("cannot tell the kernel's pid from jupyter_client's KernelManager")
    return int(pid)


def run_kernel(args: argparse.Namespace, tmp: Path) -> Soak:
    notebook = Path(shutil.copy(NOTEBOOK, tmp / NOTEBOOK.name))
    env = {**os.environ, "NBROUTES_PORT": str(free_port()), "NBROUTES_HOST": "127.0.0.1", "PYTHONUNBUFFERED": "1"}
    print("bench: kernel: starting a python3 kernel and running the notebook's cells", flush=True)
    kernel = Kernel(env)
    try:
        kernel.run(f"import os as _os\n_os.chdir({str(tmp)!r})")  # todo.db is next to the notebook
        for cell in notebook_cells(notebook):
            kernel.run(cell)
        out = kernel.run("import nbroutes as _n\nprint('BENCH-URL', _n.url())")
        m = re.search(r"BENCH-URL http://127\.0\.0\.1:(\d+)", out)
        if m is None:
            raise BenchError(f"the notebook's %load_ext nbroutes did not start a server:\n{_strip_ansi(out)}")
        port = int(m.group(1))
        check_answers("the kernel", port)
        return soak("kernel", port, kernel_pid(kernel), args, tmp, kernel)
    finally:
        kernel.shutdown()


def run_serve(args: argparse.Namespace, tmp: Path) -> Soak:
    notebook = Path(shutil.copy(NOTEBOOK, tmp / NOTEBOOK.name))
    port = free_port()
    log = tmp / "serve.log"
    command = [sys.executable, "-m", "nbroutes", "serve", notebook.name, "--port", str(port), "--no-access-log"]
    print(f"bench: serve: {' '.join(command[2:])}", flush=True)
    process = start(command, environment(tmp), tmp, log)
    try:
        try:
            check_answers("nbroutes serve", port, wait=START_WAIT)
        except BenchError as exc:
            raise BenchError(f"{exc}\nits log:\n{log.read_text()[-3000:]}") from exc
        result = soak("serve", port, process.pid, args, tmp)
        if process.poll() is not None:
            raise BenchError(f"nbroutes serve exited with status {process.returncode}:\n{log.read_text()[-3000:]}")
        return result
    finally:
        stop(process)


# -- the report ---------------------------------------------------------------------------------------------


def _mib(size: int) -> str:
    return f"{size / 2**20:.0f}"


def _cell(samples: list[float]) -> str:
    if not samples:
        return "–"
    return f"{percentile(samples, 50):.0f} / {percentile(samples, 99):.0f} ms ({len(samples)})"


def table(results: list[Soak]) -> str:
    rows = [
        "| target | requests | req/s | non-2xx | socket errors | HTTP p50 / p99 | RSS start → end (peak) "
        "| todos written / POSTs sent | `1+1` idle p50 / p99 (runs) | `1+1` under load p50 / p99 (runs) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in results:
        r = s.result
        rows.append(
            f"| {LABELS[s.target]} | {r.requests:,} | {r.rps:,.0f} | {r.non_2xx:,} | {r.socket_errors:,} "
            f"| {r.p50_ms:.1f} / {r.p99_ms:.1f} ms | {_mib(s.rss_start)} → {_mib(s.rss_end)} MiB "
            f"({_mib(s.rss_peak)}) | {s.written:,} / {s.posts_sent:,} | {_cell(s.idle_ms)} | {_cell(s.load_ms)} |"
        )
    return "\n".join(rows)


def verdicts(results: list[Soak], connections: int) -> list[str]:
    lines = []
    for s in results:
        growth = (s.rss_end - s.rss_start) / 2**20
        lines.append(
            f"{s.target}: {s.errors} errors in {s.result.requests:,} requests; RSS {growth:+.1f} MiB; "
            + ("every POST made a row" if s.writes_add_up(connections) else "POSTs and rows DO NOT add up")
            + f" ({s.written:,} todos written, {s.posts_sent:,} POSTs sent)"
        )
    return lines


def section(results: list[Soak], info: dict[str, str], args: argparse.Namespace) -> str:
    machine_rows = "\n".join(f"| {k} | {v} |" for k, v in info.items())
    date = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    ran = " and ".join(s.target for s in results)
    notes = "\n".join(f"- {line}" for line in verdicts(results, args.connections))
    return f"""{SECTION}

What is measured: whether a notebook API stays correct and its memory flat under a sustained mixed load, and
how responsive the notebook stays while it serves. The API is `notebooks/todo-api.ipynb`: `nbroutes.db("todo.db")`,
a pydantic `Todo` (`title: str`, 1 to 200 characters; `done: bool`) and
`nbroutes.crud("/api/todos", db["todos"], model=Todo)`. Each target works on a copy of the notebook in a fresh
temporary directory, so its database starts with the notebook's two seed rows:

- **kernel**: one real ipykernel started with `jupyter_client` runs the notebook's code cells, those not tagged
  `nbroutes:skip` (the same cells as `nbroutes serve`; the request widget and the data browser are left out);
- **serve**: `nbroutes serve todo-api.ipynb --port P --no-access-log`, in its own process.

wrk (`-t1 -c{args.connections} -d{args.duration:.0f}s --latency`, keep-alive) loads each target in turn, with a
Lua script whose requests alternate `GET {LIST}` and `POST {PATH}` with
`{{"title":"soak N","done":false}}` and `Content-Type: application/json` (201 and the row). The table grows by
one row per POST, so the listing's `count(*)` for `X-Total-Count` gets slower as the run goes on.

RSS is that of the serving process (the kernel's, or `nbroutes serve`'s), read at the start and end of the load
and sampled during it for the peak. "Todos written" is the change in `X-Total-Count`, against the POSTs wrk sent
(at most {args.connections}, one per connection, may be cut off when wrk stops). For the kernel, the cell
`1+1` is executed through the kernel client ({IDLE_SAMPLES} times idle before the load, then repeatedly,
{CELL_GAP * 1000:.0f} ms apart, while wrk runs): its time, submit to idle, is what a person typing in the notebook
waits while the notebook serves. Percentiles are nearest-rank; the number of runs is in brackets.

Run of {date} ({ran}):

{table(results)}

{notes}

There is no target: a soak passes when there are no errors, the writes add up and the memory stays flat.

Machine:

| | |
|---|---|
{machine_rows}

To reproduce, from the repository root:

```sh
make bench                     # every script in bench/, this one included
.venv/bin/python bench/soak.py # this section only: 60 s per target, about 2.5 minutes in all
```

`--duration SECS`, `--connections C` and `--target kernel|serve|both` change the run, `--quick` makes it 10 s
per target, and `--check` is a smoke test (2 s per target at 4 connections, failing on any error; writes
nothing). Each full run rewrites this section of `docs/benchmarks.md` and leaves the others alone.
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=60, help="seconds of load per target (default 60)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (default 64)")
    parser.add_argument("--target", choices=(*TARGETS, "both"), default="both", help="what to load (default both)")
    parser.add_argument("--quick", action="store_true", help="10 s per target")
    parser.add_argument("--check", action="store_true", help="smoke test: 2 s per target; fails on errors")
    parser.add_argument("--no-docs", action="store_true", help=f"do not rewrite {DOCS.relative_to(ROOT)}")
    args = parser.parse_args(argv)
    args.idle_samples = IDLE_SAMPLES
    if args.quick:
        args.duration = 10
    if args.check:
        args.duration, args.connections, args.no_docs, args.idle_samples = 2, 4, True, 5
    if args.duration < 1 or args.connections < 1:
        parser.error("--duration and --connections must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print(f"bench: wrk is not installed; install it with:\n    {WRK_FIX}", file=sys.stderr)
        return 2

    targets = TARGETS if args.target == "both" else (args.target,)
    runners = {"kernel": run_kernel, "serve": run_serve}
    info = machine(versions())  # before the load, for its load average
    info["pydantic"] = _version("pydantic")
    info["sqlite-utils"] = _version("sqlite-utils")
    results: list[Soak] = []
    try:
        for target in targets:
            with tempfile.TemporaryDirectory(prefix=f"nbroutes-bench-soak-{target}-") as tmp:
                results.append(runners[target](args, Path(tmp)))
            s = results[-1]
            print(
                f"bench: {target}: {s.result.requests:,} requests, {s.result.rps:,.0f} req/s, {s.errors} errors, "
                f"RSS {_mib(s.rss_start)} -> {_mib(s.rss_end)} MiB"
                + (f", 1+1 idle {_cell(s.idle_ms)}, under load {_cell(s.load_ms)}" if s.target == "kernel" else ""),
                flush=True,
            )
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1

    if args.check:
        failed = [s for s in results if s.errors or not s.writes_add_up(args.connections)]
        for line in verdicts(results, args.connections):
            print(f"bench: {line}")
        if failed:
            print("bench: check FAILED: errors under load or lost writes (see above)", file=sys.stderr)
            return 1
        print("bench: check passed (a few seconds of load; not a measurement)")
        return 0
    print()
    print(table(results))
    print()
    print("\n".join(verdicts(results, args.connections)))
    if not args.no_docs:
        write_section(section(results, info, args), DOCS, SECTION)
        print(f"bench: wrote the section {SECTION!r} of {DOCS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
