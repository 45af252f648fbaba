"""Requests/s of the ERP fake (journal and fault hooks on) against a plain FastAPI endpoint that
returns the same JSON, both measured in the same run, each served by one uvicorn process,
loaded from a separate process (wrk when installed, else a small httpx load generator).

    python benchmarks/bench_fakes.py [--seconds 5] [--rounds 3] [--connections 32]

Targets (issue 2): GET sales order >= 1.0x the plain endpoint, POST credit memo with
Idempotency-Key >= 0.5x. Rounds alternate fake and baseline so drift hits both alike.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ORDER_ID = "SO-000001"
SEED = 0


def _plain_app():
    """The baseline: what a developer writes in five minutes, returning the same bytes."""
    from fastapi import Body, FastAPI

    order, memo = json.loads(Path(os.environ["BENCH_JSON"]).read_text())
    app = FastAPI()

    @app.get("/sales-orders/{order_id}")
    async def get_order(order_id: str):
        return order

    @app.post("/credit-memos", status_code=201)
    async def post_memo(body: dict = Body(...)):
        return memo

    return app


def _fake_app():
    from simulators.erp.app import create_app
    from simulators.fakekit.hooks import FaultRuleSpec

    app = create_app(seed=SEED)
    # Hooks on: a rule that is evaluated on every request but never matches these paths.
    app.state.system.hooks.add(FaultRuleSpec(kind="latency", path="/supplier-claims*", latency_ms=1))
    return app


def serve(which: str, port: int) -> None:
    import uvicorn

    app = _fake_app() if which == "fake" else _plain_app()
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(which: str, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--serve", which, "--port", str(port)], env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{url}/openapi.json", timeout=1)
            return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{which} server did not start")


_WRK_POST = """
counter = 0
request = function()
  counter = counter + 1
  wrk.headers["Idempotency-Key"] = "bench-" .. os.time() .. "-" .. math.random(1, 1e9) .. "-" .. counter
  return wrk.format("POST", "/credit-memos")
end
"""


def _wrk(url: str, path: str, headers: dict[str, str], body: str | None, seconds: int, connections: int) -> float:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s"]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    script = None
    if body is not None:
        script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
        script.write(_WRK_POST + f"\nwrk.method = 'POST'\nwrk.body = {json.dumps(body)}\n")
        script.close()
        cmd += ["-s", script.name]
    out = subprocess.run([*cmd, url + path], capture_output=True, text=True, check=True).stdout
    if script:
        os.unlink(script.name)
    non2xx = next((l for l in out.splitlines() if "Non-2xx" in l), None)
    if non2xx:
        raise RuntimeError(f"{url}{path}: {non2xx.strip()}")
    return float(next(l for l in out.splitlines() if l.startswith("Requests/sec")).split()[1])


async def _httpx_load(url, path, headers, body, seconds, connections) -> float:
    done = 0
    stop = time.monotonic() + seconds

    async def worker(client, n):
        nonlocal done
        i = 0
        while time.monotonic() < stop:
            i += 1
            if body is None:
                r = await client.get(path)
            else:
                r = await client.post(path, content=body, headers={"Idempotency-Key": f"bench-{n}-{i}-{time.time_ns()}"})
            r.raise_for_status()
            done += 1

    limits = httpx.Limits(max_connections=connections)
    async with httpx.AsyncClient(base_url=url, headers={**headers, "Content-Type": "application/json"}, limits=limits) as client:
        await asyncio.gather(*(worker(client, n) for n in range(connections)))
    return done / seconds


def _load(url, path, headers, body, seconds, connections) -> float:
    if shutil.which("wrk"):
        return _wrk(url, path, headers, body, seconds, connections)
    return asyncio.run(_httpx_load(url, path, headers, body, seconds, connections))


def _erp_fixture(url: str) -> tuple[dict[str, str], str, str]:
    """A token, an RMA to credit and the credit memo body; for the baseline, the JSON the fake
    answers for the order and for a credit memo, so both sides send the same bytes."""
    from simulators.erp.app import credentials

    creds = credentials(SEED)
    token = httpx.post(
        f"{url}/oauth/token",
        data={"grant_type": "client_credentials", "client_id": creds.client_id, "client_secret": creds.client_secret},
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    order = httpx.get(f"{url}/sales-orders/{ORDER_ID}", headers=headers).json()
    line = order["lines"][0]
    rma = httpx.post(
        f"{url}/return-authorizations",
        headers=headers,
        json={"sales_order_id": ORDER_ID, "lines": [{"line_number": line["line_number"], "quantity": 1, "reason": "changed_mind"}]},
    ).json()
    body = json.dumps(
        {"return_authorization_id": rma["id"], "lines": [{"line_number": line["line_number"], "quantity": 1, "amount": line["unit_price"]}]}
    )
    memo = httpx.post(f"{url}/credit-memos", headers=headers, content=body).json()
    order = httpx.get(f"{url}/sales-orders/{ORDER_ID}", headers=headers).json()
    return headers, body, json.dumps([order, memo])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--serve", choices=["fake", "plain"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return

    env = dict(os.environ)
    fake, fake_url = _start("fake", env)
    try:
        headers, memo_body, answers = _erp_fixture(fake_url)
        answers_file = Path(tempfile.mkstemp(suffix=".json")[1])
        answers_file.write_text(answers)
        plain, plain_url = _start("plain", {**env, "BENCH_JSON": str(answers_file)})
        try:
            results = {}
            for name, path, body in [("GET sales order", f"/sales-orders/{ORDER_ID}", None), ("POST credit memo", "/credit-memos", memo_body)]:
                fake_rps, plain_rps = [], []
                for _ in range(args.rounds):
                    fake_rps.append(_load(fake_url, path, headers, body, args.seconds, args.connections))
                    plain_rps.append(_load(plain_url, path, headers, body, args.seconds, args.connections))
                f, p = statistics.median(fake_rps), statistics.median(plain_rps)
                results[name] = (f, p, f / p)
        finally:
            plain.terminate()
            answers_file.unlink()
    finally:
        fake.terminate()

    tool = "wrk" if shutil.which("wrk") else "httpx"
    print(f"load: {tool}, {args.connections} connections, {args.rounds} x {args.seconds} s per side, alternating")
    print(f"{'endpoint':<18} {'fake req/s':>11} {'plain req/s':>12} {'ratio':>7}")
    for name, (f, p, ratio) in results.items():
        print(f"{name:<18} {f:>11.0f} {p:>12.0f} {ratio:>6.2f}x")


if __name__ == "__main__":
    main()
