"""Throughput of a validated POST: nbroutes in a real kernel vs FastAPI as its users run it, and the rest.

One ipykernel is started with jupyter_client. In it, ``%load_ext nbroutes`` serves
``%%route POST /api/items`` whose handler takes ``body: Item`` (a pydantic model of three
fields) and returns ``body, 201``; a bare Tornado ``RequestHandler`` in the same kernel
validates the same model with pydantic itself. Separate processes run uvicorn (one worker
each) on bench/fastapi_items.py, the same model behind ``@app.post("/api/items",
status_code=201)``, and on the same route cell through ``nbroutes.asgi``: each with
uvloop and httptools, as ``pip install "fastapi[standard]"`` installs uvicorn and as
``uvicorn app:app`` then runs it, and again on uvicorn's pure-Python stack (asyncio, h11),
reported on a second line. wrk POSTs the same JSON body to each in turn, the order
reversed every round; the result is the median of the per-round ratios of requests per
second, nbroutes/FastAPI. The target is a ratio of at least 0.95.

    .venv/bin/python bench/validated_post.py            # full run; rewrites its section of docs/benchmarks.md
    .venv/bin/python bench/validated_post.py --quick    # 5 rounds of 2 s
    .venv/bin/python bench/validated_post.py --check    # smoke test: all answer under wrk; writes nothing

Needs wrk and fastapi[standard] (``make bench`` installs them). Exit status as bench/hello.py:
0 on success (whether or not the target was met), 1 when a server does not answer, a load
run fails or uvloop/httptools are missing, 2 when wrk is missing.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import http.client
import importlib.util
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hello import (  # noqa: E402
    MEASURES,
    ROOT,
    VERSIONS_CELL,
    WRK_FIX,
    BenchError,
    Kernel,
    Labels,
    Summary,
    _strip_ansi,
    free_port,
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

SECTION = "## Validated POST: nbroutes in the kernel vs FastAPI on uvicorn"
PATH = "/api/items"
TARGET = 0.95
BODY = '{"name":"widget","price":9.5,"quantity":3}'
EXPECTED = {"name": "widget", "price": 9.5, "quantity": 3}
NAMES = ("nbroutes", "FastAPI", "bare Tornado", "nbroutes.asgi", "FastAPI, h11", "nbroutes.asgi, h11")
#: The systems on uvicorn's pure-Python stack: context on a second line, not the comparison.
H11 = ("FastAPI, h11", "nbroutes.asgi, h11")
LABELS: Labels = (
    ("nbroutes", "nbroutes `%%route POST` in the kernel"),
    ("FastAPI", "FastAPI `async def` on uvicorn with uvloop + httptools (`fastapi[standard]`), 1 worker"),
    ("bare Tornado", "bare Tornado `RequestHandler` + pydantic, same kernel"),
    ("nbroutes.asgi", "nbroutes.asgi (same cell) on uvicorn with uvloop + httptools, 1 worker"),
    ("FastAPI, h11", "second line: FastAPI on uvicorn's pure-Python asyncio + h11 (plain `pip install uvicorn`)"),
    ("nbroutes.asgi, h11", "second line: nbroutes.asgi on uvicorn's pure-Python asyncio + h11"),
)

#: uvicorn's options for each stack. uvicorn picks uvloop and httptools by itself when they are installed; naming
#: them makes a run without them fail rather than measure the slower stack.
STACKS = {
    "standard": ["--loop", "uvloop", "--http", "httptools"],
    "h11": ["--loop", "asyncio", "--http", "h11"],
}
STANDARD_FIX = """pip install -e '.[bench]'   (or: pip install "fastapi[standard]"; make bench does it)"""

BARE_CELL = """\
import pydantic as _pd, tornado.web as _tw

class _BenchItem(_pd.BaseModel):
    name: str
    price: float
    quantity: int

class _BenchItems(_tw.RequestHandler):
    def post(self):
        self.set_header("Content-Type", "application/json")
        try:
            item = _BenchItem.model_validate_json(self.request.body)
        except _pd.ValidationError as exc:
            self.set_status(422)
            self.finish(exc.json())
            return
        self.set_status(201)
        self.finish(item.model_dump_json())

_bench_bare_server = _tw.Application([(r"/api/items", _BenchItems)]).listen({port}, "127.0.0.1")
"""

ROUTE_CELL = """\
%%route POST /api/items
from pydantic import BaseModel

class Item(BaseModel):
    name: str
    price: float
    quantity: int

def POST(req, body: Item):
    return body, 201
"""

LUA = f"""\
wrk.method = "POST"
wrk.body = '{BODY}'
wrk.headers["Content-Type"] = "application/json"
"""


def post(port: int, body: str = BODY, timeout: float = 5) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", PATH, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def check_answers(ports: dict[str, int], wait: float = 10) -> dict[str, bytes]:
    """Both servers answer 201 with the same JSON item for BODY, and 422 for a body that does not validate."""
    bodies: dict[str, bytes] = {}
    for name, port in ports.items():
        status, headers, raw = when_up(name, port, post, wait)
        if status != 201:
            raise BenchError(f"{name}: POST 127.0.0.1:{port}{PATH} answered {status}: {raw[:300]!r}")
        try:
            value = json.loads(raw)
        except ValueError as exc:
            raise BenchError(f"{name} answered a body that is not JSON: {raw[:200]!r}") from exc
        if value != EXPECTED:
            raise BenchError(f"{name} answered {value!r}, not {EXPECTED!r}")
        if not headers.get("content-type", "").startswith("application/json"):
            raise BenchError(f"{name} answered Content-Type {headers.get('content-type')!r}")
        bad, _, _ = post(port, '{"name":"widget","price":"cheap","quantity":3}')
        if bad != 422:
            raise BenchError(f"{name} answered {bad} to a body that does not validate, not 422")
        bodies[name] = raw
    return bodies


def require_standard() -> None:
    """uvloop and httptools are importable, as ``fastapi[standard]`` installs them; raises BenchError if not."""
    missing = [module for module in ("uvloop", "httptools") if importlib.util.find_spec(module) is None]
    if missing:
        raise BenchError(
            f"{' and '.join(missing)} not installed: FastAPI's users run uvicorn with uvloop and httptools "
            f"(fastapi[standard]), and a comparison without them is not fair. Install them with:\n    {STANDARD_FIX}"
        )


def uvicorn_command(port: int, app: str, stack: str, *extra: str) -> list[str]:
    """``uvicorn app`` on 127.0.0.1:``port``, one worker, no access log, on ``stack`` ("standard" or "h11")."""
    return [
        sys.executable, "-m", "uvicorn", "--app-dir", str(ROOT / "bench"), app, *extra, *STACKS[stack],
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1", "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip


def start_uvicorn(port: int, stack: str = "standard") -> subprocess.Popen[bytes]:
    """uvicorn on bench/fastapi_items.py."""
    return subprocess.Popen(uvicorn_command(port, "fastapi_items:app", stack), cwd=ROOT, start_new_session=True)


def start_asgi(port: int, notebook: Path, stack: str) -> subprocess.Popen[bytes]:
    """uvicorn on ``nbroutes.asgi`` serving ``notebook`` (the route cell), as docs/deploy.md runs it."""
    env = {**os.environ, "NBROUTES_NOTEBOOK": str(notebook)}
    command = uvicorn_command(port, "nbroutes.asgi:from_env", stack, "--factory")
    return subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)


def route_notebook(path: Path) -> Path:
    """A notebook of ``%load_ext nbroutes`` and ROUTE_CELL, for nbroutes.asgi."""
    cells = [
        {"cell_type": "code", "execution_count": None, "id": f"c{i}", "metadata": {}, "outputs": [], "source": src}
        for i, src in enumerate(["%load_ext nbroutes", ROUTE_CELL])
    ]
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return path


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    except ProcessLookupError:
        pass


def _version(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


def table(summary: Summary) -> str:
    return results_table(summary, LABELS)


def gain(summary: Summary, fast: str, slow: str) -> float:
    """The median of the per-round ratios of req/s ``fast`` / ``slow``."""
    return statistics.median(r[fast].rps / r[slow].rps for r in summary.rounds)


def section(summary: Summary, info: dict[str, str], args: argparse.Namespace, bodies: dict[str, bytes]) -> str:
    met = summary.ratio >= TARGET
    verdict = (
        f"**Met**: {summary.ratio:.3f} >= {TARGET:.2f}." if met else f"**Not met**: {summary.ratio:.3f} < {TARGET:.2f}."
    )
    machine_rows = "\n".join(f"| {k} | {v} |" for k, v in info.items())
    date = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    answers = (
        f"every one `{next(iter(bodies.values())).decode()}`"
        if len(set(bodies.values())) == 1
        else "; ".join(f"{name}: `{body.decode()}`" for name, body in bodies.items())
    )
    fastapi_gain, asgi_gain = gain(summary, "FastAPI", "FastAPI, h11"), gain(summary, "nbroutes.asgi", H11[1])
    return f"""{SECTION}

What is measured: a POST whose JSON body is validated by pydantic and echoed back with 201, served by nbroutes
in a notebook kernel and by FastAPI as its users install and run it. All validate the same model,
`class Item(BaseModel): name: str; price: float; quantity: int`:

- **nbroutes**, in one real ipykernel started with `jupyter_client`: `%load_ext nbroutes`, then the cell
  `%%route POST /api/items` defining `Item` and `def POST(req, body: Item): return body, 201` (nbroutes binds
  `body` from the annotation and validates it, `nbroutes/core/validation.py`);
- **FastAPI**, the comparison, in a separate process: `uvicorn --loop uvloop --http httptools --workers 1` on
  `bench/fastapi_items.py`, `@app.post("/api/items", status_code=201) async def create(item: Item): return item`.
  That is what `pip install "fastapi[standard]"` installs (uvicorn with uvloop and httptools) and what
  `uvicorn app:app` and `fastapi run` pick; the options only make a missing uvloop or httptools fail the run;
- **bare Tornado**, in the same kernel: a `RequestHandler` whose `post` runs `Item.model_validate_json` on the
  body and writes `model_dump_json()` (422 with pydantic's errors otherwise): the floor of the kernel's server;
- **nbroutes.asgi**: the same route cell in a notebook served by `uvicorn nbroutes.asgi:from_env --factory`
  with uvloop and httptools, one worker, as `docs/deploy.md` runs it;
- on a **second line**, for context only: FastAPI and nbroutes.asgi on uvicorn's pure-Python stack
  (`--loop asyncio --http h11`, what plain `pip install uvicorn` gives).

Before loading, each answers `POST /api/items` with `{BODY}` by 201 and the same JSON ({answers}), and a body
that does not validate by 422. wrk (`-t1 -c{args.connections} -d{args.duration:.0f}s --latency`, keep-alive, a
Lua script setting `wrk.method = "POST"`, that body and `Content-Type: application/json`) loads them one at a
time: after a {args.warmup:.0f} s warm-up of each, {args.rounds} rounds of one run each, the order reversed
every round. One wrk thread and the one process under load share the {info["nproc"]} cores. The ratio is the
median of the per-round ratios of requests per second. {MEASURES}

Run of {date}:

{table(summary)}

uvloop + httptools over asyncio + h11, same app (median of the per-round ratios of req/s): FastAPI
{fastapi_gain:.2f}x, nbroutes.asgi {asgi_gain:.2f}x. This is why `docs/deploy.md` installs `uvicorn[standard]`.

Target: nbroutes in the kernel serves at least {TARGET:.0%} of the requests per second of FastAPI on uvicorn
with uvloop and httptools (ratio >= {TARGET:.2f}).
{verdict}

Machine:

| | |
|---|---|
{machine_rows}

To reproduce, from the repository root:

```sh
make bench     # installs wrk and fastapi[standard] when missing, runs every script in bench/, draws the chart
.venv/bin/python bench/validated_post.py  # this section only
```

`bench/validated_post.py --rounds N --duration SECS --connections C` changes the run, `--quick` makes it short
(5 rounds of 2 s), and `--check` is a smoke test (every server answers under wrk; writes nothing). Each full run
rewrites this section of `docs/benchmarks.md`, leaving the others alone, and `docs/benchmarks/validated_post.json`.
"""


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv, __doc__.split("\n\n")[0], "FastAPI")

    if shutil.which("wrk") is None:
        print(f"bench: wrk is not installed; install it with:\n    {WRK_FIX}", file=sys.stderr)
        return 2

    port_a = free_port()
    env = {**os.environ, "NBROUTES_PORT": str(port_a), "NBROUTES_HOST": "127.0.0.1", "PYTHONUNBUFFERED": "1"}
    kernel: Kernel | None = None
    servers: dict[str, subprocess.Popen[bytes]] = {}
    with tempfile.TemporaryDirectory(prefix="nbroutes-post-") as tmp_name:
        tmp = Path(tmp_name)
        lua = tmp / "post.lua"
        lua.write_text(LUA)
        notebook = route_notebook(tmp / "items.ipynb")
        try:
            require_standard()
            ports = {name: free_port() for name in NAMES}
            print("bench: starting uvicorn (4 servers) and a python3 kernel", flush=True)
            servers["FastAPI"] = start_uvicorn(ports["FastAPI"], "standard")
            servers["FastAPI, h11"] = start_uvicorn(ports["FastAPI, h11"], "h11")
            servers["nbroutes.asgi"] = start_asgi(ports["nbroutes.asgi"], notebook, "standard")
            servers["nbroutes.asgi, h11"] = start_asgi(ports["nbroutes.asgi, h11"], notebook, "h11")
            kernel = Kernel(env)
            out = kernel.run("%load_ext nbroutes\nimport nbroutes\nprint('BENCH-URL', nbroutes.url())")
            m = re.search(r"BENCH-URL http://127\.0\.0\.1:(\d+)", out)
            if m is None:
                raise BenchError(f"%load_ext nbroutes did not start a server:\n{_strip_ansi(out)}")
            ports["nbroutes"] = int(m.group(1))
            kernel.run(ROUTE_CELL)
            kernel.run(BARE_CELL.replace("{port}", str(ports["bare Tornado"])))
            versions = json.loads(kernel.run(VERSIONS_CELL).split("BENCH-VERSIONS ", 1)[1].splitlines()[0])
            for name, server in servers.items():
                if server.poll() is not None:
                    raise BenchError(f"uvicorn for {name} exited with status {server.returncode}")
            bodies = check_answers(ports, wait=30)
            for name, port in ports.items():
                print(f"bench: {name:<18} POST http://127.0.0.1:{port}{PATH} -> {bodies[name].decode()}", flush=True)
            info = machine(versions)
            info.update(
                pydantic=_version("pydantic"),
                fastapi=_version("fastapi"),
                starlette=_version("starlette"),
                uvicorn=f"{_version('uvicorn')} (1 worker per server)",
                uvloop=_version("uvloop"),
                httptools=_version("httptools"),
                h11=_version("h11"),
            )
            pids: dict[str, int | None] = {name: server.pid for name, server in servers.items()}
            pids.update({"nbroutes": kernel.pid, "bare Tornado": kernel.pid})
            summary = load(ports, args.rounds, args.duration, args.connections, args.warmup, PATH, str(lua), pids=pids)
            check_answers(ports)  # still alive after the load
        except BenchError as exc:
            print(f"bench: {exc}", file=sys.stderr)
            return 1
        finally:
            try:
                if kernel is not None:
                    kernel.shutdown()
            finally:
                for server in servers.values():
                    stop(server)

    met = "met" if summary.ratio >= TARGET else "NOT met"
    verdict = (
        f"target ratio nbroutes/FastAPI >= {TARGET:.2f}: {met} ({summary.ratio:.3f}); uvloop + httptools over h11: "
        f"FastAPI {gain(summary, 'FastAPI', H11[0]):.2f}x, nbroutes.asgi {gain(summary, 'nbroutes.asgi', H11[1]):.2f}x"
    )
    return report(
        summary,
        args,
        verdict,
        lambda: section(summary, info, args, bodies),
        SECTION,
        table,
        save=lambda: save_results("validated_post", summary, LABELS, args, info, SECTION, TARGET, H11),
    )


if __name__ == "__main__":
    sys.exit(main())
