"""Throughput of a validated POST: nbroutes in a real kernel vs FastAPI on uvicorn (one worker).

One ipykernel is started with jupyter_client. In it, ``%load_ext nbroutes`` serves
``%%route POST /api/items`` whose handler takes ``body: Item`` (a pydantic model of three
fields) and returns ``body, 201``. A separate process runs ``uvicorn`` with one worker on
bench/fastapi_items.py, the same model behind ``@app.post("/api/items", status_code=201)``.
wrk POSTs the same JSON body to them alternately (A then B, then B then A, ...) and the
result is the median of the per-round ratios of requests per second, nbroutes/FastAPI.
The target is a ratio of at least 0.95.

    .venv/bin/python bench/validated_post.py            # full run; rewrites its section of docs/benchmarks.md
    .venv/bin/python bench/validated_post.py --quick    # fewer, shorter rounds
    .venv/bin/python bench/validated_post.py --check    # smoke test: both answer under wrk; writes nothing

Needs wrk, fastapi and uvicorn (``make bench`` installs them). Exit status as bench/hello.py:
0 on success (whether or not the target was met), 1 when a server does not answer or a load
run fails, 2 when wrk is missing.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hello import (  # noqa: E402
    ROOT,
    VERSIONS_CELL,
    WRK_FIX,
    BenchError,
    Kernel,
    Summary,
    _strip_ansi,
    free_port,
    load,
    machine,
    parse_args,
    report,
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
NAMES = ("nbroutes", "FastAPI")

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


def start_uvicorn(port: int) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable, "-m", "uvicorn", "--app-dir", str(ROOT / "bench"), "fastapi_items:app",
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1", "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    return subprocess.Popen(cmd, cwd=ROOT, start_new_session=True)


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
    a, b = NAMES
    labels = ((a, "nbroutes `%%route POST` in the kernel"), (b, "FastAPI `async def` on uvicorn, 1 worker"))
    return results_table(summary, labels, "FastAPI")


def section(summary: Summary, info: dict[str, str], args: argparse.Namespace, bodies: dict[str, bytes]) -> str:
    met = summary.ratio >= TARGET
    verdict = (
        f"**Met**: {summary.ratio:.3f} >= {TARGET:.2f}."
        if met
        else f"**Not met**: {summary.ratio:.3f} < {TARGET:.2f} (see the notes below, if some were added by hand)."
    )
    machine_rows = "\n".join(f"| {k} | {v} |" for k, v in info.items())
    date = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"""{SECTION}

What is measured: a POST whose JSON body is validated by pydantic and echoed back with 201, served by nbroutes
in a notebook kernel and by FastAPI, the usual way to write such an endpoint. Both validate the same model,
`class Item(BaseModel): name: str; price: float; quantity: int`:

- **nbroutes**, in one real ipykernel started with `jupyter_client`: `%load_ext nbroutes`, then the cell
  `%%route POST /api/items` defining `Item` and `def POST(req, body: Item): return body, 201` (nbroutes binds
  `body` from the annotation and validates it, `nbroutes/validation.py`);
- **FastAPI**, in a separate process: `uvicorn --workers 1` (asyncio loop and h11, as installed: no uvloop,
  no httptools) on `bench/fastapi_items.py`,
  `@app.post("/api/items", status_code=201) async def create(item: Item): return item`.

Before loading, both answer `POST /api/items` with `{BODY}` by 201 and the same JSON
(nbroutes: `{bodies["nbroutes"].decode()}`; FastAPI: `{bodies["FastAPI"].decode()}`),
and a body that does not validate by 422. wrk (`-t1 -c{args.connections} -d{args.duration:.0f}s --latency`,
keep-alive, a Lua script setting `wrk.method = "POST"`, that body and `Content-Type: application/json`) loads
them one at a time, alternately: after a {args.warmup:.0f} s warm-up of each, {args.rounds} rounds of nbroutes
then FastAPI, the order swapped every round. One wrk thread, the single-threaded kernel and the one uvicorn
worker share the {info["nproc"]} cores. The figures are medians over the rounds; the ratio is the median of
the per-round ratios of requests per second, the number to compare across machines.

Run of {date}:

{table(summary)}

Target: nbroutes serves at least {TARGET:.0%} of FastAPI's requests per second (ratio >= {TARGET:.2f}). For
context, a bare Tornado handler calling pydantic directly was reported at about 1.0 of FastAPI on this machine
(an earlier measurement, not made by this script).
{verdict}

Machine:

| | |
|---|---|
{machine_rows}

To reproduce, from the repository root:

```sh
make bench     # installs wrk, fastapi and uvicorn when missing, runs bench/hello.py then bench/validated_post.py
```

`bench/validated_post.py --rounds N --duration SECS --connections C` changes the run, `--quick` makes it short
(3 rounds of 2 s), and `--check` is a smoke test (both servers answer under wrk; writes nothing). Each full run
rewrites this section of `docs/benchmarks.md` and leaves the others alone.
"""


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv, __doc__.split("\n\n")[0], "FastAPI")

    if shutil.which("wrk") is None:
        print(f"bench: wrk is not installed; install it with:\n    {WRK_FIX}", file=sys.stderr)
        return 2

    port_a, port_b = free_port(), free_port()
    env = {**os.environ, "NBROUTES_PORT": str(port_a), "NBROUTES_HOST": "127.0.0.1", "PYTHONUNBUFFERED": "1"}
    kernel: Kernel | None = None
    uvicorn: subprocess.Popen[bytes] | None = None
    with tempfile.NamedTemporaryFile("w", suffix=".lua", prefix="nbroutes-post-") as lua:
        lua.write(LUA)
        lua.flush()
        try:
            print(f"bench: starting uvicorn on 127.0.0.1:{port_b} and a python3 kernel", flush=True)
            uvicorn = start_uvicorn(port_b)
            kernel = Kernel(env)
            out = kernel.run("%load_ext nbroutes\nimport nbroutes\nprint('BENCH-URL', nbroutes.url())")
            m = re.search(r"BENCH-URL http://127\.0\.0\.1:(\d+)", out)
            if m is None:
                raise BenchError(f"%load_ext nbroutes did not start a server:\n{_strip_ansi(out)}")
            port_a = int(m.group(1))
            kernel.run(ROUTE_CELL)
            versions = json.loads(kernel.run(VERSIONS_CELL).split("BENCH-VERSIONS ", 1)[1].splitlines()[0])
            if uvicorn.poll() is not None:
                raise BenchError(f"uvicorn exited with status {uvicorn.returncode}")
            ports = {NAMES[0]: port_a, NAMES[1]: port_b}
            bodies = check_answers(ports, wait=20)
            for name, port in ports.items():
                print(f"bench: {name:<9} POST http://127.0.0.1:{port}{PATH} -> {bodies[name].decode()}", flush=True)
            info = machine(versions)
            info.update(
                pydantic=_version("pydantic"),
                fastapi=_version("fastapi"),
                uvicorn=f"{_version('uvicorn')} (1 worker, asyncio loop, h11)",
            )
            summary = load(
                ports, args.rounds, args.duration, args.connections, args.warmup, PATH, lua.name, "nbroutes/FastAPI"
            )
            check_answers(ports)  # still alive after the load
        except BenchError as exc:
            print(f"bench: {exc}", file=sys.stderr)
            return 1
        finally:
            try:
                if kernel is not None:
                    kernel.shutdown()
            finally:
                if uvicorn is not None:
                    stop(uvicorn)

    met = "met" if summary.ratio >= TARGET else "NOT met"
    verdict = f"target ratio >= {TARGET:.2f}: {met} ({summary.ratio:.3f})"
    return report(summary, args, verdict, lambda: section(summary, info, args, bodies), SECTION, table)


if __name__ == "__main__":
    sys.exit(main())
