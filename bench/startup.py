"""Start-up time: ``nbroutes serve`` on the todo notebook vs uvicorn + FastAPI, and the cost of each route.

Each start is a new process, timed from just before it is spawned to the first 200 answer
on its path (polled every 5 ms), then stopped:

- **nbroutes**: ``nbroutes serve todo-api.ipynb`` on a fresh copy of notebooks/todo-api.ipynb
  (and so a fresh ``todo.db``), polled on ``GET /api/todos``;
- **FastAPI**: ``uvicorn fastapi_todos:app --loop uvloop --http httptools`` (bench/fastapi_todos.py,
  the same API on SQLite, on uvicorn as ``fastapi[standard]`` installs it), polled on ``GET /api/todos``;
- **routes N**: ``nbroutes serve`` on a generated notebook of N ``%%route`` cells (N = 1, 100
  and 1,000, every other one dynamic), polled on ``GET /api/r0``.

The targets are started one after the other, in rounds, the order reversed every round, so a
slow spell of the machine falls on all of them. Two ratios: nbroutes/FastAPI start-up time,
the median of the per-round ratios (target <= 1.5), and the cost of a route in the 1,000-route
notebook over its cost in the 100-route one (target <= 2.0: registering N routes costs O(N)),
a route's cost being (median run of N routes - median run of 1) / (N - 1), where a run is the
time the runner of ``nbroutes serve`` takes to run the notebook, timed inside a fresh interpreter
(imports excluded): 100 routes cost less than the noise of a whole process's start.

    .venv/bin/python bench/startup.py            # 7 rounds; rewrites its section of docs/benchmarks.md
    .venv/bin/python bench/startup.py --quick    # 5 rounds
    .venv/bin/python bench/startup.py --check    # smoke test: one round; writes nothing
    .venv/bin/python bench/startup.py --source ../other-checkout --no-docs   # another nbroutes

Needs fastapi[standard] (``make bench`` installs it). Exit status: 0 on success (whether or
not the targets were met), 1 when a server does not start or answer, or uvloop/httptools are missing.
The figures are also saved as docs/benchmarks/startup.json.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hello import DOCS, ROOT, BenchError, free_port, get, git_revision, host, load_average, write_json, write_section  # noqa: E402
from validated_post import _version, require_standard, stop, uvicorn_command  # noqa: E402

SECTION = "## Start-up: nbroutes serve vs uvicorn + FastAPI, and the cost of a route"
NOTEBOOK = ROOT / "notebooks" / "todo-api.ipynb"
TODO_PATH = "/api/todos"
ROUTES_PATH = "/api/r0"
SIZES = (1, 100, 1000)
NAMES = ("nbroutes", "FastAPI", *(f"routes {n}" for n in SIZES))
START_TARGET = 1.5
ROUTE_TARGET = 2.0
START_WAIT = 180
POLL = 0.005


def routes_notebook(count: int, path: Path) -> Path:
    """A notebook of ``%load_ext nbroutes`` and ``count`` route cells: /api/r0, /api/r1/[id], /api/r2, ..."""

    def cell(source: str) -> dict[str, object]:
        return {"cell_type": "code", "execution_count": None, "id": f"c{len(cells)}", "metadata": {}, "outputs": [],
                "source": source}  # fmt: skip

    cells: list[dict[str, object]] = []
    cells.append(cell("%load_ext nbroutes"))
    for i in range(count):
        if i % 2:
            cells.append(
                cell(f"%%route GET /api/r{i}/[id]\ndef GET(req):\n    return {{'n': {i}, 'id': req.query['id']}}")
            )
        else:
            cells.append(cell(f"%%route GET /api/r{i}\ndef GET(req):\n    return {{'n': {i}}}"))
    notebook = {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(notebook))
    return path


@dataclass
class Target:
    name: str
    path: str
    #: Makes the command that starts it on a port, in a fresh directory.
    command: Callable[[int, Path], list[str]]
    #: The generated notebook of a routes-N target, whose run is also timed inside a fresh interpreter.
    notebook: Path | None = None
    times: list[float] = field(default_factory=list)
    runs: list[float] = field(default_factory=list)


def serve_command(notebook: Path) -> Callable[[int, Path], list[str]]:
    def command(port: int, directory: Path) -> list[str]:
        copy = directory / notebook.name
        shutil.copy(notebook, copy)
        return [sys.executable, "-m", "nbroutes", "serve", str(copy), "--port", str(port), "--no-access-log"]

    return command


def fastapi_command(port: int, directory: Path) -> list[str]:
    return uvicorn_command(port, "fastapi_todos:app", "standard")


def start_time(target: Target, env: dict[str, str], tmp: Path, run: str) -> float:
    """Seconds from spawning ``target`` to its first 200 on ``target.path``; it is stopped after.

    Raises BenchError if it exits or does not answer 200 within START_WAIT seconds.
    """
    directory = tmp / f"{target.name.replace(' ', '-')}-{run}"
    directory.mkdir()
    port = free_port()
    command = target.command(port, directory)
    log = directory / "log.txt"
    with open(log, "wb") as out:
        began = time.perf_counter()
        process = subprocess.Popen(
            command, cwd=directory, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = began + START_WAIT
        while True:
            try:
                status, _, body = get(port, target.path, timeout=START_WAIT)
            except OSError:
                status, body = 0, b""
            if status == 200:
                return time.perf_counter() - began
            if status or process.poll() is not None or time.perf_counter() > deadline:
                raise BenchError(
                    f"{target.name} did not answer 200 on {target.path} (status {status or 'none'}, "
                    f"{body[:200]!r}):\n{log.read_text()[-3000:]}"
                )
            time.sleep(POLL)
    finally:
        stop(process)


RUN_SCRIPT = """\
import sys, time
from nbroutes.headless.runner import run_notebook

began = time.perf_counter()
run = run_notebook(sys.argv[1])
print("BENCH-RUN", time.perf_counter() - began, len(run.app.router.routes))
"""


def run_time(notebook: Path, env: dict[str, str], tmp: Path, run: str) -> float:
    """Seconds ``nbroutes serve``'s runner takes to run ``notebook`` (imports done), timed in a fresh interpreter.

    Raises BenchError if the run fails.
    """
    directory = tmp / f"run-{notebook.stem}-{run}"
    directory.mkdir()
    copy = Path(shutil.copy(notebook, directory))
    done = subprocess.run(
        [sys.executable, "-c", RUN_SCRIPT, str(copy)],
        cwd=directory, env=env, capture_output=True, text=True, timeout=START_WAIT, check=False,
    )  # fmt: skip
    line = next((line for line in done.stdout.splitlines() if line.startswith("BENCH-RUN ")), None)
    if done.returncode != 0 or line is None:
        raise BenchError(f"running {notebook.name} failed:\n{done.stdout[-2000:]}{done.stderr[-3000:]}")
    return float(line.split()[1])


@dataclass
class Results:
    targets: dict[str, Target]

    def median(self, name: str) -> float:
        return statistics.median(self.targets[name].times)

    @property
    def start_ratios(self) -> list[float]:
        return [a / b for a, b in zip(self.targets["nbroutes"].times, self.targets["FastAPI"].times, strict=True)]

    def route_cost(self, count: int) -> float:
        """(median run of ``count`` routes - median run of 1 route) / (count - 1), in seconds.

        From the notebooks' runs, timed inside the process, not from the starts: a route costs well under
        a millisecond, so 100 of them are within the noise of a whole process's start.
        """
        runs = {n: statistics.median(self.targets[f"routes {n}"].runs) for n in (1, count)}
        return (runs[count] - runs[1]) / (count - 1)

    @property
    def route_ratio(self) -> float:
        return self.route_cost(1000) / self.route_cost(100)


def measure(targets: dict[str, Target], rounds: int, env: dict[str, str], tmp: Path) -> Results:
    order = list(targets.values())
    for target in order:  # a warm-up start of each: .pyc files, the page cache, IPython's profile directory
        start_time(target, env, tmp, "warm-up")
    for run in range(rounds):
        for target in order if run % 2 == 0 else order[::-1]:
            seconds = start_time(target, env, tmp, str(run))
            target.times.append(seconds)
            ran = ""
            if target.notebook is not None:
                target.runs.append(run_time(target.notebook, env, tmp, str(run)))
                ran = f"  (notebook run {target.runs[-1] * 1000:.0f} ms)"
            print(f"bench: round {run + 1}/{rounds}  {target.name:<12} {seconds * 1000:8.0f} ms{ran}", flush=True)
    return Results(targets)


def machine(source: Path) -> dict[str, str]:
    return {
        **host(),
        "python": f"{platform.python_version()} ({platform.python_implementation()})",
        "nbroutes": f"{'this checkout' if source == ROOT else source.name} at {git_revision(source)}",
        "ipython": _version("ipython"),
        "nbformat": _version("nbformat"),
        "fastapi": _version("fastapi"),
        "uvicorn": f"{_version('uvicorn')} (uvloop {_version('uvloop')}, httptools {_version('httptools')})",
        "load average before the run (1 min)": load_average(),
    }


def table(results: Results) -> str:
    rows = [
        "| start | median | fastest | slowest | notebook run (median) |",
        "|---|---:|---:|---:|---:|",
    ]
    labels = {
        "nbroutes": "`nbroutes serve todo-api.ipynb` to `GET /api/todos` 200",
        "FastAPI": "`uvicorn fastapi_todos:app` to `GET /api/todos` 200",
        **{f"routes {n}": f"`nbroutes serve` of {n:,} route cell{'s' * (n != 1)} to `GET /api/r0` 200" for n in SIZES},
    }
    for name, label in labels.items():
        times, runs = results.targets[name].times, results.targets[name].runs
        ran = f"{statistics.median(runs):.3f} s" if runs else ""
        rows.append(f"| {label} | {statistics.median(times):.3f} s | {min(times):.3f} s | {max(times):.3f} s | {ran} |")
    costs = {n: results.route_cost(n) * 1000 for n in SIZES[1:]}
    start, route = statistics.median(results.start_ratios), results.route_ratio
    return "\n".join(
        [
            *rows,
            "",
            "| ratio | value | target |",
            "|---|---:|---:|",
            f"| start-up, nbroutes / FastAPI (median of the per-round ratios) | {start:.2f} "
            f"| <= {START_TARGET} {_met(start <= START_TARGET)} |",
            f"| cost of a route at 1,000 routes / at 100 ({costs[1000]:.2f} ms / {costs[100]:.2f} ms) "
            f"| {route:.2f} | <= {ROUTE_TARGET} {_met(route <= ROUTE_TARGET)} |",
        ]
    )


def _met(ok: bool) -> str:
    return "(met)" if ok else "(**not met**)"


def section(results: Results, info: dict[str, str], rounds: int) -> str:
    machine_rows = "\n".join(f"| {k} | {v} |" for k, v in info.items())
    date = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"""{SECTION}

What is measured: how long a notebook takes from `nbroutes serve` to its first answer, against the same API
written for FastAPI and started with uvicorn, and whether a notebook's start grows linearly with its routes.
Each start is a new process, timed from just before it is spawned to the first `200` on its path (polled every
5 ms), then stopped; every start gets a fresh directory, so a fresh `todo.db`:

- **nbroutes**: `nbroutes serve todo-api.ipynb --port P --no-access-log` on a copy of
  `notebooks/todo-api.ipynb` (`nbroutes.crud` over SQLite, a `%%route` cell, widgets that do nothing headless),
  polled on `GET /api/todos`;
- **FastAPI**: `uvicorn --app-dir bench fastapi_todos:app --loop uvloop --http httptools --workers 1
  --log-level warning --no-access-log` (`bench/fastapi_todos.py`: the same resource and stats route on `sqlite3`;
  uvicorn as `fastapi[standard]` installs it), polled on `GET /api/todos`;
- **routes N**: `nbroutes serve` on a generated notebook of `%load_ext nbroutes` and N `%%route` cells
  (`/api/r0`, `/api/r1/[id]`, `/api/r2`, ...), polled on `GET /api/r0`.

After a warm-up start of each, {rounds} rounds start every target once, one at a time, the order reversed every
round. The start-up ratio is the median of the per-round ratios. For the cost of a route, each round also runs each
routes-N notebook with the runner `nbroutes serve` uses (`run_notebook`), timed inside a fresh interpreter once
its imports are done: a route costs well under a millisecond, so 100 of them are within the noise of a whole
process's start. The cost of a route is (median run of N routes - median run of 1 route) / (N - 1).
Targets: start-up within 1.5x of FastAPI's; a route of the 1,000-route notebook within 2x the cost of one of the
100-route notebook (registering N routes costs O(N)).

Run of {date}:

{table(results)}

Machine:

| | |
|---|---|
{machine_rows}

To reproduce, from the repository root:

```sh
make bench                       # installs the bench extras (fastapi[standard]), then runs every script in bench/
.venv/bin/python bench/startup.py  # this section only
```

`--rounds N` changes the run, `--quick` makes it 5 rounds, `--check` is a smoke test (one round, writes nothing),
and `--source DIR --no-docs` starts the nbroutes of another checkout (its `PYTHONPATH`) to compare two versions.
Each full run rewrites this section of `docs/benchmarks.md`, leaving the others alone, and
`docs/benchmarks/startup.json`.
"""


def save(results: Results, info: dict[str, str], rounds: int) -> Path:
    """The figures as docs/benchmarks/startup.json (bench/chart.py draws throughput only, and skips it)."""
    return write_json(
        "startup",
        {
            "benchmark": "startup",
            "kind": "startup",
            "title": SECTION.removeprefix("## "),
            "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "rounds": rounds,
            "start_ratio": statistics.median(results.start_ratios),
            "route_ratio": results.route_ratio,
            "systems": [
                {"name": name, "start_s": statistics.median(t.times), "start_s_by_round": t.times, "run_s": t.runs}
                for name, t in results.targets.items()
            ],
            "machine": info,
        },
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=7, help="rounds of one start of each target (default 7)")
    parser.add_argument("--quick", action="store_true", help="5 rounds")
    parser.add_argument("--check", action="store_true", help="smoke test: one round, exit 0 if all answer")
    parser.add_argument("--no-docs", action="store_true", help=f"do not rewrite {DOCS.relative_to(ROOT)}")
    parser.add_argument("--source", type=Path, default=ROOT, help="the nbroutes checkout to start (default: this one)")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds = 5
    if args.check:
        args.rounds, args.no_docs = 1, True
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    args.source = args.source.resolve()
    if not (args.source / "nbroutes" / "__init__.py").is_file():
        parser.error(f"--source {args.source}: no nbroutes package there")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if "not installed" in (_version("fastapi"), _version("uvicorn")):
        print("bench: FastAPI and uvicorn are needed: pip install -e '.[bench]' (or make bench)", file=sys.stderr)
        return 1
    try:
        require_standard()
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="nbroutes-bench-startup-") as tmp_name:
        tmp = Path(tmp_name)
        env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=str(args.source), IPYTHONDIR=str(tmp / "ipython"))
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        targets = {
            "nbroutes": Target("nbroutes", TODO_PATH, serve_command(NOTEBOOK)),
            "FastAPI": Target("FastAPI", TODO_PATH, fastapi_command),
            **{
                f"routes {n}": Target(f"routes {n}", ROUTES_PATH, serve_command(notebook), notebook)
                for n, notebook in ((n, routes_notebook(n, tmp / f"r{n}.ipynb")) for n in SIZES)
            },
        }
        print(f"bench: nbroutes from {args.source}", flush=True)
        info = machine(args.source)
        try:
            results = measure(targets, args.rounds, env, tmp)
        except BenchError as exc:
            print(f"bench: {exc}", file=sys.stderr)
            return 1
    if args.check:
        print("bench: check passed (every target started and answered 200; not a measurement)")
        return 0
    print()
    print(table(results))
    if not args.no_docs:
        write_section(section(results, info, args.rounds), DOCS, SECTION)
        print(f"bench: wrote the section {SECTION!r} of {DOCS.relative_to(ROOT)}")
        print(f"bench: wrote {save(results, info, args.rounds).relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
