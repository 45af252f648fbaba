"""Webhook intake req/s and end-to-end returns/minute of the reference, against baselines.

The reference integration layer (reference_middleware) and a minimal baseline for each
measure, both measured in the same run, rounds alternating:

1. Webhook intake, requests/s under wrk: the reference (signature check, validation, inbox and
   job written to SQLite in one transaction, workers running beside it) against a plain
   FastAPI ``async def`` endpoint in its own uvicorn process that reads the same POST and
   answers 200 without checking anything. Every request is a distinct, validly signed
   ``tracking.updated`` event (new event id, tracking code and return id, timestamp of the
   round), so the reference takes its "new event" path, not its duplicate path; each makes a
   job that parks (its return was never approved) without calling any fake.

2. End to end, returns/minute: N real returns created on a fresh portal (delivered orders of
   the seeded master data, in the window, customers not on hold), their ``return.created``
   events posted to the reference as fast as it acknowledges them, timed until the portal has
   no return left in ``requested`` (then checked: all N ``approved``). Baseline: the same N
   returns on fresh fakes approved by a bare async script making the same HTTP calls as the
   reference (GET order, GET customer, GET policy once, POST RMA, GET item once per item,
   POST label, POST ASN, GET return, PATCH approved, same headers and Idempotency-Keys, same
   number of returns at once) with no storage, no inbox, no jobs. The ratio is what
   durability and the job machinery cost.

Also printed: CPU ms per return of each side's own process (the reference process, intake and
workers; the baseline's script) and of the fakes, from /proc.

Each side runs against its own fakes process, started fresh for each end-to-end run so return
ids and RMAs do not interfere (the intake's fakes are never called and serve all its rounds).
``--fakes shipped`` (the default) is ``returns-harness fakes`` itself; ``--fakes nodelay`` is
the same fleet with TCP_NODELAY on its connections: the shipped fleet listens on sockets made
with proto 0, which asyncio does not set TCP_NODELAY on, and most keep-alive requests to it
then wait ~40 ms for a delayed ACK, which hides what the reference itself costs.

    python benchmarks/bench_reference.py [--seconds 5] [--rounds 3] [--returns 200] [--workers 8]
    python benchmarks/bench_reference.py --only e2e --fakes nodelay
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson

# Imported here, not in _plain_app: FastAPI resolves the endpoint's annotations in module scope.
from fastapi import Request

SECRET = "whsec_" + "YmVuY2gtcmVmZXJlbmNlLXNlY3JldC0wMTIzNDU2Nzg5"
SEED = 0
STARTUP_TIMEOUT_S = 30.0
_SCRIPT = Path(sys.executable).parent / "returns-harness"
_HARNESS = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "simulators.cli"]


# -- processes --------------------------------------------------------------------------------


def _plain_app():
    """The baseline of the intake: receive the POST, answer 200, check nothing."""
    from fastapi import FastAPI

    app = FastAPI()

    @app.post("/webhooks")
    async def webhook(request: Request):
        await request.body()
        return {"ok": True}

    return app


def serve_plain(port: int) -> None:
    import uvicorn

    uvicorn.run(_plain_app(), host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _free_base_port() -> int:
    """A base port whose base+1 .. base+4 (the four fakes) are all free right now."""
    for _ in range(50):
        base = _free_port()
        if base + 4 > 65535:
            continue
        try:
            for offset in range(1, 5):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", base + offset))
            return base
        except OSError:
            continue
    raise RuntimeError("no four consecutive free ports")


def _wait_http(url: str, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code < 500:
                return
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"{what} did not start within {STARTUP_TIMEOUT_S:g} s")


def _stop(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


@dataclass
class Fakes:
    proc: subprocess.Popen
    env_file: Path
    env: dict[str, str]

    def stop(self) -> None:
        _stop(self.proc)


def serve_fakes_nodelay(base_port: int, env_file: Path) -> None:
    """The fleet of ``returns-harness fakes``, but listening on sockets created with
    ``IPPROTO_TCP``: asyncio then sets TCP_NODELAY on every accepted connection (it skips
    sockets whose ``proto`` is 0, which is what ``simulators.serving._bind`` makes)."""
    import signal

    from simulators import serving

    bind = serving._bind

    def bind_tcp(host: str, port: int, name: str) -> socket.socket:
        sock = bind(host, port, name)
        tcp = socket.socket(sock.family, socket.SOCK_STREAM, socket.IPPROTO_TCP, fileno=sock.detach())
        tcp.setblocking(False)
        return tcp

    serving._bind = bind_tcp

    async def serve() -> None:
        fleet = serving.FakeFleet(SEED, base_port=base_port)
        await fleet.start()
        try:
            fleet.write_env(env_file)
            stop = asyncio.Event()
            for sig in (signal.SIGINT, signal.SIGTERM):
                asyncio.get_running_loop().add_signal_handler(sig, stop.set)
            await stop.wait()
        finally:
            await fleet.stop()

    asyncio.run(serve())


def start_fakes(workdir: Path, mode: str) -> Fakes:
    """Fresh fakes in their own process, on fresh ports, with a fresh env file: ``shipped`` is
    ``returns-harness fakes`` itself, ``nodelay`` the same fleet with TCP_NODELAY on."""
    for _attempt in range(3):
        env_file = workdir / f"fakes-{time.monotonic_ns()}.env"
        base = _free_base_port()
        if mode == "shipped":
            command = [*_HARNESS, "fakes", "--seed", str(SEED), "--base-port", str(base), "--env-file", str(env_file)]
        else:
            command = [sys.executable, __file__, "--serve-fakes", "--port", str(base), "--env-file", str(env_file)]
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline and proc.poll() is None and not env_file.exists():
            time.sleep(0.05)
        if proc.poll() is None and env_file.exists():
            time.sleep(0.05)  # written in one call; let it land
            env = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if line and not line.startswith("#"))
            _wait_http(env["RH_RETURNS_PORTAL_URL"] + "/openapi.json", proc, "the fakes")
            return Fakes(proc, env_file, env)
        _stop(proc)  # a port taken between the check and the bind: try other ports
    raise RuntimeError("the fakes did not start")


def start_reference(workdir: Path, env_file: Path, workers: int) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    db = workdir / f"ref-{time.monotonic_ns()}.sqlite3"
    with (workdir / "reference.log").open("ab") as log:  # the child keeps its own copy
        proc = subprocess.Popen(
            [sys.executable, "-m", "reference_middleware", "--port", str(port), "--fakes-env", str(env_file),
             "--webhook-secret", SECRET, "--database", f"sqlite:///{db}", "--workers", str(workers)],
            stdout=subprocess.DEVNULL, stderr=log,
        )
    url = f"http://127.0.0.1:{port}"
    _wait_http(url + "/healthz", proc, "the reference")
    return proc, url


def start_plain() -> tuple[subprocess.Popen, str]:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--serve-plain", "--port", str(port)])
    url = f"http://127.0.0.1:{port}"
    _wait_http(url + "/openapi.json", proc, "the plain endpoint")
    return proc, url


# -- signed events ----------------------------------------------------------------------------


def _signer():
    from simulators.delivery.signing import secret_key, signature_header

    key = secret_key(SECRET)
    return lambda msg_id, ts, body: signature_header(msg_id, ts, body, [key])


def signed(events: list[dict]) -> list[tuple[str, str, str, bytes]]:
    """(webhook-id, webhook-timestamp, webhook-signature, body) per event, timestamped now."""
    sign = _signer()
    ts = int(time.time())
    out = []
    for event in events:
        body = orjson.dumps(event)
        out.append((event["id"], str(ts), sign(event["id"], ts, body), body))
    return out


def tracking_events(tag: str, count: int) -> list[dict]:
    """Distinct ``tracking.updated`` events of returns nobody created: each job parks."""
    at = (datetime(2026, 12, 26, tzinfo=UTC) + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    return [
        {
            "id": f"evt_{tag}_{n:07d}",
            "type": "tracking.updated",
            "occurred_at": at,
            "correlation_id": f"RET-{tag}-{n:07d}",
            "data": {
                "tracking_code": f"1Z{tag}{n:07d}",
                "carrier": "UPS",
                "rma_id": f"RMA-{tag}-{n:07d}",
                "status": "in_transit",
                "previous_status": "pre_transit",
                "message": "Departed facility",
                "location": "Columbus, OH",
                "occurred_at": at,
            },
        }
        for n in range(count)
    ]


# -- 1. intake under wrk ----------------------------------------------------------------------

_WRK_SCRIPT = r"""
local reqs, n, i = {}, 0, 0
init = function(args)
  for line in io.lines(args[1]) do
    local id, ts, sig, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
    n = n + 1
    reqs[n] = wrk.format("POST", "/webhooks", {
      ["Content-Type"] = "application/json",
      ["webhook-id"] = id, ["webhook-timestamp"] = ts, ["webhook-signature"] = sig,
    }, body)
  end
end
request = function()
  i = i % n + 1
  return reqs[i]
end
"""


def _write_requests(path: Path, deliveries: list[tuple[str, str, str, bytes]]) -> None:
    with path.open("wb") as f:
        for msg_id, ts, sig, body in deliveries:
            f.write(f"{msg_id}\t{ts}\t{sig}\t".encode() + body + b"\n")


def wrk(url: str, script: Path, requests_file: Path, seconds: int, connections: int) -> tuple[float, int]:
    """Requests/s and the number of requests wrk completed."""
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(script), url + "/webhooks", "--", str(requests_file)],
        capture_output=True, text=True, check=True,
    ).stdout
    non2xx = next((l for l in out.splitlines() if "Non-2xx" in l), None)
    if non2xx:
        raise RuntimeError(f"{url}: {non2xx.strip()}")
    errors = next((l for l in out.splitlines() if "Socket errors" in l), None)
    if errors:
        print(f"  wrk {url}: {errors.strip()}", file=sys.stderr)
    done = int(re.search(r"(\d+) requests in", out).group(1))
    return float(next(l for l in out.splitlines() if l.startswith("Requests/sec")).split()[1]), done


def _metrics(url: str) -> dict[str, float]:
    text = httpx.get(url + "/metrics", timeout=30).text
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def _wait_drained(url: str, timeout_s: float = 120) -> float:
    """Seconds until the reference has no pending job left (its workers caught up)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if _metrics(url).get("reference_jobs_pending", 0) == 0:
            return time.monotonic() - start
        time.sleep(0.2)
    raise RuntimeError(f"the reference still had pending jobs after {timeout_s:g} s")


def bench_intake(workdir: Path, args) -> dict:
    events_per_round = max(2000, args.seconds * args.max_rate)
    fakes = start_fakes(workdir, args.fakes)
    ref = plain = None
    try:
        ref, ref_url = start_reference(workdir, fakes.env_file, args.workers)
        plain, plain_url = start_plain()
        script = workdir / "intake.lua"
        script.write_text(_WRK_SCRIPT)
        ref_rps, plain_rps, drains, new_total, sent_total = [], [], [], 0, 0
        for r in range(args.rounds):
            for side in (("reference", "plain") if r % 2 == 0 else ("plain", "reference")):
                requests_file = workdir / f"intake-{side}-{r}.tsv"
                # Signed just before the round: timestamps well within the 5 minutes tolerated.
                _write_requests(requests_file, signed(tracking_events(f"B{r}{side[0].upper()}", events_per_round)))
                if side == "reference":
                    before = _metrics(ref_url)
                    rps, done = wrk(ref_url, script, requests_file, args.seconds, args.connections)
                    after = _metrics(ref_url)
                    key = 'reference_deliveries_total{outcome="new",type="tracking.updated"}'
                    new_total += int(after.get(key, 0) - before.get(key, 0))
                    sent_total += done
                    ref_rps.append(rps)
                    # Let the workers park the backlog before the next measurement shares the CPU.
                    drains.append(_wait_drained(ref_url))
                else:
                    rps, _ = wrk(plain_url, script, requests_file, args.seconds, args.connections)
                    plain_rps.append(rps)
                requests_file.unlink()
                print(f"  intake round {r + 1} {side}: {rps:.0f} req/s", file=sys.stderr)
        dead = _metrics(ref_url)
    finally:
        _stop(ref)
        _stop(plain)
        fakes.stop()
    if new_total < sent_total:
        print(f"  warning: {sent_total - new_total} of {sent_total} deliveries were not new (raise --max-rate)", file=sys.stderr)
    return {
        "ref": statistics.median(ref_rps),
        "plain": statistics.median(plain_rps),
        "ref_all": ref_rps,
        "plain_all": plain_rps,
        "new": new_total,
        "sent": sent_total,
        "drain_s": statistics.median(drains),
        "dead": dead.get("reference_jobs_dead", 0),
    }


# -- 2. end to end ----------------------------------------------------------------------------


def return_requests(n: int) -> list[dict]:
    """N one-unit return requests the reference must approve: delivered orders inside the
    window (with a day to spare), customers not on hold, each unit returned at most once."""
    from simulators.seed import master_data

    master = master_data(SEED)
    epoch = master.config.epoch
    window = timedelta(days=master.policy.window_days - 1)
    out = []
    for order in sorted(master.orders.values(), key=lambda o: o.id):
        customer = master.customers[order.customer_id]
        if order.delivered_at is None or epoch - order.delivered_at > window or customer.account_status == "on_hold":
            continue
        for line in order.lines:
            for _unit in range(line.quantity):
                out.append({"order_id": order.id, "customer_email": customer.email, "resolution": "refund",
                            "lines": [{"line_number": line.line_number, "quantity": 1, "reason": "changed_mind"}]})
                if len(out) == n:
                    return out
    raise SystemExit(f"the seeded master data has only {len(out)} returnable units; ask for fewer --returns")


def _portal(fakes: Fakes) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=fakes.env["RH_RETURNS_PORTAL_URL"], timeout=30,
                             headers={"Authorization": f"Bearer {fakes.env['RH_RETURNS_PORTAL_API_KEY']}"})


async def _gather_limited(coros, limit: int) -> list:
    sem = asyncio.Semaphore(limit)

    async def one(c):
        async with sem:
            return await c

    return await asyncio.gather(*(one(c) for c in coros))


async def create_returns(fakes: Fakes, requests: list[dict]) -> list[dict]:
    async with _portal(fakes) as portal:
        async def create(body):
            r = await portal.post("/returns", json=body)
            r.raise_for_status()
            return r.json()

        return await _gather_limited((create(b) for b in requests), 16)


async def count_status(portal: httpx.AsyncClient, status: str) -> int:
    count, after = 0, None
    while True:
        params = {"status": status, "limit": 1000, **({"after": after} if after else {})}
        page = (await portal.get("/returns", params=params)).json()
        count += len(page)
        if len(page) < 1000:
            return count
        after = page[-1]["id"]


def _cpu_s(pid: int | None = None) -> float | None:
    """CPU seconds (user + system) a process used so far; None where /proc is missing."""
    if pid is None:
        t = os.times()
        return t.user + t.system
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Run:
    elapsed_s: float  # first event posted (or first call made) until all N approved
    cpu_s: float | None  # CPU of the side's own process over that time
    fakes_cpu_s: float | None
    acked_s: float | None = None  # reference only: until the last return.created was acknowledged


def _delta(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else after - before


async def e2e_reference(fakes: Fakes, returns: list[dict], workdir: Path, args) -> Run:
    proc, url = await asyncio.to_thread(start_reference, workdir, fakes.env_file, args.workers)
    try:
        events = [{"id": f"evt_e2e_{ret['id']}", "type": "return.created", "occurred_at": ret["requested_at"],
                   "correlation_id": ret["id"], "data": ret} for ret in returns]
        deliveries = signed(events)
        async with httpx.AsyncClient(base_url=url, timeout=30, limits=httpx.Limits(max_connections=16)) as client, _portal(fakes) as portal:
            async def post(msg_id, ts, sig, body):
                r = await client.post("/webhooks", content=body, headers={
                    "Content-Type": "application/json", "webhook-id": msg_id, "webhook-timestamp": ts, "webhook-signature": sig})
                if r.status_code != 200 or r.json()["outcome"] != "new":
                    raise RuntimeError(f"the reference answered {r.status_code}: {r.text[:200]}")

            cpu, fakes_cpu = _cpu_s(proc.pid), _cpu_s(fakes.proc.pid)
            start = time.perf_counter()
            await _gather_limited((post(*d) for d in deliveries), 16)
            acked = time.perf_counter() - start
            deadline = start + args.timeout
            # Cheap to answer, so polling does not slow the fakes: any return still requested?
            while (await portal.get("/returns", params={"status": "requested", "limit": 1})).json():
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"returns still requested after {args.timeout:g} s; see {workdir / 'reference.log'}")
                await asyncio.sleep(0.05)
            elapsed = time.perf_counter() - start
            run = Run(elapsed, _delta(cpu, _cpu_s(proc.pid)), _delta(fakes_cpu, _cpu_s(fakes.proc.pid)), acked)
            approved = await count_status(portal, "approved")
            if approved != len(returns):
                raise RuntimeError(f"the reference approved {approved} of {len(returns)} returns")
            gauges = _metrics(url)
            if gauges.get("reference_jobs_dead", 0) or gauges.get("reference_retries", 0):
                print(f"  reference: {gauges.get('reference_jobs_dead', 0):.0f} jobs dead,"
                      f" {gauges.get('reference_retries', 0):.0f} retries", file=sys.stderr)
        return run
    finally:
        await asyncio.to_thread(_stop, proc)


async def e2e_baseline(fakes: Fakes, returns: list[dict], args) -> Run:
    """The same calls as the reference's return.created handler, with the same caching (the
    policy once, each item once, the ERP token once), nothing stored."""
    env = fakes.env
    limits = httpx.Limits(max_connections=64)  # as the reference's client
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        auth = {
            "wms": f"Bearer {env['RH_WMS_API_KEY']}",
            "carrier": f"Bearer {env['RH_CARRIER_API_KEY']}",
            "returns_portal": f"Bearer {env['RH_RETURNS_PORTAL_API_KEY']}",
        }
        policy: dict | None = None
        items: dict[str, dict] = {}

        async def call(system, method, path, rid, key=None, json=None):
            headers = {"X-Correlation-ID": rid, "Authorization": auth[system]}
            if key:
                headers["Idempotency-Key"] = key
            r = await client.request(method, env[f"RH_{system.upper()}_URL"] + path, json=json, headers=headers)
            r.raise_for_status()
            return r.json()

        async def approve(ret):
            nonlocal policy
            rid = ret["id"]
            order = await call("erp", "GET", f"/sales-orders/{ret['order_id']}", rid)
            customer = await call("erp", "GET", f"/customers/{ret['customer_id']}", rid)
            if policy is None:
                policy = await call("returns_portal", "GET", "/policy", rid)
            age = datetime.fromisoformat(ret["requested_at"]) - datetime.fromisoformat(order["delivered_at"])
            if customer["account_status"] == "on_hold" or age.total_seconds() > policy["window_days"] * 86_400:
                raise RuntimeError(f"{rid} is not eligible; the bench picked it wrongly")
            rma = await call("erp", "POST", "/return-authorizations", rid, f"{rid}:rma", {
                "sales_order_id": ret["order_id"], "external_reference": rid,
                "lines": [{"line_number": l["line_number"], "quantity": l["quantity"], "reason": l["reason"]} for l in ret["lines"]],
            })
            weight = 0
            for line in rma["lines"]:
                if line["item_id"] not in items:
                    items[line["item_id"]] = await call("erp", "GET", f"/items/{line['item_id']}", rid)
                weight += items[line["item_id"]]["weight_g"] * line["quantity"]
            label = await call("carrier", "POST", "/labels", rid, f"{rid}:label", {
                "rma_id": rma["id"], "from_address": customer["address"], "to_site_id": rma["site_id"],
                "parcel": {"weight_g": min(70_000, max(1, weight))}, "service": "ground", "is_return": True,
            })
            await call("wms", "POST", "/expected-receipts", rid, f"{rid}:asn", {
                "rma_id": rma["id"], "site_id": rma["site_id"], "tracking_code": label["tracking_code"],
                "lines": [{"item_id": l["item_id"], "quantity": l["quantity"]} for l in rma["lines"]],
            })
            current = await call("returns_portal", "GET", f"/returns/{rid}", rid)
            if current["status"] == "cancelled":
                return
            await call("returns_portal", "PATCH", f"/returns/{rid}", rid, json={
                "status": "approved", "rma_id": rma["id"],
                "label": {"carrier": label["carrier"], "tracking_code": label["tracking_code"], "label_url": label["label_url"]},
            })

        cpu, fakes_cpu = _cpu_s(), _cpu_s(fakes.proc.pid)
        start = time.perf_counter()
        token = (await client.post(env["RH_ERP_TOKEN_URL"], data={
            "grant_type": "client_credentials", "client_id": env["RH_ERP_CLIENT_ID"], "client_secret": env["RH_ERP_CLIENT_SECRET"],
        })).json()["access_token"]
        auth["erp"] = f"Bearer {token}"
        await _gather_limited((approve(ret) for ret in returns), args.workers)
        run = Run(time.perf_counter() - start, _delta(cpu, _cpu_s()), _delta(fakes_cpu, _cpu_s(fakes.proc.pid)))
    async with _portal(fakes) as portal:
        approved = await count_status(portal, "approved")
    if approved != len(returns):
        raise RuntimeError(f"the baseline approved {approved} of {len(returns)} returns")
    return run


def _median(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def bench_e2e(workdir: Path, args) -> dict:
    requests = return_requests(args.returns)
    runs: dict[str, list[Run]] = {"reference": [], "baseline": []}
    for r in range(args.rounds):
        for side in (("baseline", "reference") if r % 2 == 0 else ("reference", "baseline")):
            fakes = start_fakes(workdir, args.fakes)
            try:
                returns = asyncio.run(create_returns(fakes, requests))
                if side == "reference":
                    run = asyncio.run(e2e_reference(fakes, returns, workdir, args))
                else:
                    run = asyncio.run(e2e_baseline(fakes, returns, args))
            finally:
                fakes.stop()
            runs[side].append(run)
            print(f"  e2e round {r + 1} {side}: {len(returns)} returns in {run.elapsed_s:.2f} s", file=sys.stderr)
    n = args.returns

    def summary(side: str) -> dict:
        rs = runs[side]
        return {
            "per_minute": statistics.median(n * 60 / x.elapsed_s for x in rs),
            "all": [n * 60 / x.elapsed_s for x in rs],
            "cpu_ms": _median([x.cpu_s * 1000 / n if x.cpu_s is not None else None for x in rs]),
            "fakes_cpu_ms": _median([x.fakes_cpu_s * 1000 / n if x.fakes_cpu_s is not None else None for x in rs]),
            "acks": _median([n / x.acked_s if x.acked_s else None for x in rs]),
        }

    return {"ref": summary("reference"), "base": summary("baseline")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5, help="Length of one wrk run (intake)")
    parser.add_argument("--rounds", type=int, default=3, help="Rounds per benchmark; each round measures both sides")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (intake)")
    parser.add_argument("--max-rate", type=int, default=5000, help="Events signed per second of a wrk run, so none repeats")
    parser.add_argument("--returns", type=int, default=200, help="Returns per end-to-end run")
    parser.add_argument("--workers", type=int, default=8, help="Returns worked on at once, by the reference and by the baseline")
    parser.add_argument("--timeout", type=float, default=120, help="Longest wait for the reference to approve the returns")
    parser.add_argument("--only", choices=["intake", "e2e"], help="Run one of the two benchmarks")
    parser.add_argument("--fakes", choices=["shipped", "nodelay"], default="shipped",
                        help="shipped: `returns-harness fakes`; nodelay: the same fleet with TCP_NODELAY on its connections")
    parser.add_argument("--serve-plain", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve-fakes", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--env-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_plain:
        serve_plain(args.port)
        return
    if args.serve_fakes:
        serve_fakes_nodelay(args.port, args.env_file)
        return
    if not shutil.which("wrk") and args.only != "e2e":
        raise SystemExit("the intake benchmark needs wrk (apt-get install wrk); or pass --only e2e")

    with tempfile.TemporaryDirectory(prefix="bench-reference-") as tmp:
        workdir = Path(tmp)
        intake = bench_intake(workdir, args) if args.only != "e2e" else None
        e2e = bench_e2e(workdir, args) if args.only != "intake" else None
        log = (workdir / "reference.log").read_text(errors="replace") if (workdir / "reference.log").exists() else ""

    print(f"{args.rounds} rounds per benchmark, sides alternating; fakes: {args.fakes}")
    if intake:
        print(f"intake: wrk 1 thread, {args.connections} connections, {args.seconds} s per side per round")
        print(f"{'intake (tracking.updated)':<28} {'reference':>10} {'plain':>10} {'ratio':>7}")
        print(f"{'req/s (median)':<28} {intake['ref']:>10.0f} {intake['plain']:>10.0f} {intake['ref'] / intake['plain']:>6.2f}x")
        print(f"  rounds: reference {', '.join(f'{x:.0f}' for x in intake['ref_all'])};"
              f" plain {', '.join(f'{x:.0f}' for x in intake['plain_all'])}")
        print(f"  stored as new: {intake['new']} events for the {intake['sent']} requests wrk completed (it stops with some"
              f" in flight); backlog parked {intake['drain_s']:.1f} s after each run (median); jobs dead: {intake['dead']:.0f}")
    if e2e:
        ref, base = e2e["ref"], e2e["base"]
        print(f"end to end: {args.returns} returns per run, {args.workers} at once")
        print(f"{'returns approved':<28} {'reference':>10} {'baseline':>10} {'ratio':>7}")
        print(f"{'returns/minute (median)':<28} {ref['per_minute']:>10.0f} {base['per_minute']:>10.0f}"
              f" {ref['per_minute'] / base['per_minute']:>6.2f}x")
        if ref["cpu_ms"] is not None and base["cpu_ms"] is not None:
            print(f"{'CPU ms per return, own proc':<28} {ref['cpu_ms']:>10.1f} {base['cpu_ms']:>10.1f}"
                  f" {ref['cpu_ms'] / base['cpu_ms']:>6.2f}x")
        if ref["fakes_cpu_ms"] is not None and base["fakes_cpu_ms"] is not None:
            print(f"{'CPU ms per return, fakes':<28} {ref['fakes_cpu_ms']:>10.1f} {base['fakes_cpu_ms']:>10.1f}")
        print(f"  rounds: reference {', '.join(f'{x:.0f}' for x in ref['all'])};"
              f" baseline {', '.join(f'{x:.0f}' for x in base['all'])}")
        print(f"  return.created acknowledged by the reference at {ref['acks']:.0f} events/s (median, 16 senders)")
    problems = [l for l in log.splitlines() if " WARNING " in l or " ERROR " in l]
    if problems:
        print(f"reference log: {len(problems)} warnings/errors, first: {problems[0][:300]}")


if __name__ == "__main__":
    main()
