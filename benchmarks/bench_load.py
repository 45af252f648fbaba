"""Requests/s one Locust worker process generates with the load's users, against a baseline;
and the knee of the reference integration layer on this machine.

Throughput (default): the load's users (:mod:`load.users`: Customer, Carrier and Warehouse, as
many of each; ``--mix customer`` for the Customer alone) against plain ``FastHttpUser`` classes
sending the same requests with the same bodies (built and signed once, up front) in the same
run, both against a null receiver (a raw asyncio HTTP server in its own process that answers
each route with a canned document: the portal's return, an approved return with its label, a
tracker, an ASN, a receipt, an inspection, a webhook acknowledgement). The load's users do
everything they do under load: pick orders, draw lines and grades, parse answers, build and sign
each envelope, journal each delivery attempt, keep journeys, hand returns from customer to
carrier to warehouse. Rounds alternate (which side goes first too); the ratio of medians is
reported, with the range over rounds. Target: >= 0.8x. Beside requests/s, requests per CPU second
of the worker while its users ran (getrusage): on a shared machine a run's share of a core moves
from one run to the next, and this figure moves much less.

    python benchmarks/bench_load.py [--seconds 8] [--rounds 3] [--users 21] [--mix all|customer]

Knee (``--knee``): fixed-rate runs of ``load/locustfile.py`` against the reference (each with a
fresh load environment), doubling the rate from ``--knee-start`` until a run breaks the SLA, then
bisecting. A rate is sustainable when every gate passes: acknowledgement p99 from the intended
send time within the scenario's (500 ms), request -> RMA p95 within ``--knee-rma-lag-s``, error
rate within 1%, and the reconciliation. Everything (Locust, the fakes, the reference) shares this
machine.

    python benchmarks/bench_load.py --knee [--knee-seconds 20] [--knee-start 120] [--knee-bisect 2]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

NULL_SERVER = r'''
import asyncio, json, sys
ANSWERS = json.load(open(sys.argv[2]))  # "METHOD first-path-segment" -> canned JSON document
CANNED = {key.encode(): (b"HTTP/1.1 %d OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"
                         % (code, len(body.encode())) + body.encode()) for key, (code, body) in ANSWERS.items()}
MISSING = b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"
class P(asyncio.Protocol):
    def connection_made(self, t):
        import socket
        self.t, self.buf = t, b""
        t.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    def data_received(self, data):
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0: return
            head = self.buf[:end]
            n = 0
            for line in head.lower().split(b"\r\n"):
                if line.startswith(b"content-length:"): n = int(line.split(b":")[1])
            if len(self.buf) < end + 4 + n: return
            self.buf = self.buf[end + 4 + n:]
            method, path = head.split(b" ", 2)[:2]
            key = method + b" " + path.split(b"?")[0].split(b"/")[1]
            self.t.write(CANNED.get(key, MISSING))
async def main():
    server = await asyncio.get_running_loop().create_server(P, "127.0.0.1", int(sys.argv[1]))
    print("ready", flush=True)
    await server.serve_forever()
asyncio.run(main())
'''

LOCUSTFILE = r'''
import json, os, sys
sys.path.insert(0, os.environ["RH_REPO"])
from locust import FastHttpUser, events, task, constant
from load.users import Carrier as _Carrier, Customer as _Customer, Warehouse as _Warehouse
from load.driver import Context

class Customer(_Customer):
    wait_time = constant(0)

class Carrier(_Carrier):
    def wait_time(self):  # no spinning while the customers have handed nothing over yet
        return 0.0 if self.ctx.to_carrier else 0.01

class Warehouse(_Warehouse):
    def wait_time(self):
        return 0.0 if self.ctx.to_warehouse else 0.01

REQUESTS = json.load(open(os.environ["RH_BODIES"]))  # user -> [[method, url, name, headers, body], ...]

def plain(user):
    steps = [(m, u, n, h, b.encode() if b is not None else None) for m, u, n, h, b in REQUESTS[user]]
    class Plain(FastHttpUser):
        wait_time = constant(0)
        @task
        def post(self):
            for method, url, name, headers, body in steps:
                self.client.request(method, url, data=body, headers=headers, name=name)
    Plain.__name__ = Plain.__qualname__ = "Plain" + user
    return Plain

PlainCustomer, PlainCarrier, PlainWarehouse = plain("Customer"), plain("Carrier"), plain("Warehouse")

@events.init_command_line_parser.add_listener
def _opts(parser):
    for name, default in (("--rh-env-json", ""), ("--rh-run", "bench")):
        parser.add_argument(name, default=default)
    parser.add_argument("--rh-partitions", type=int, default=1)
    for name in ("--rh-pace", "--rh-duplicate-rate", "--rh-ship-after", "--rh-receive-after"):
        parser.add_argument(name, type=float, default=0.0)

CPU = {}

def _cpu():
    import resource
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime

@events.test_start.add_listener
def _cpu_start(environment, **kw):
    CPU["start"] = _cpu()

@events.test_stop.add_listener
def _cpu_stop(environment, **kw):  # the worker's CPU seconds while the users ran
    with open(os.environ["RH_CPU"], "a") as f:
        f.write(f"{_cpu() - CPU['start']} {environment.runner.stats.total.num_requests}\n")

@events.init.add_listener
def _start(environment, **kw):  # before the clock starts: building the orders takes a while
    environment.parsed_options.rh_env_json = open(os.environ["RH_ENV"]).read()
    environment.parsed_options.rh_pace = 1e-9
    environment.rh = Context(environment.parsed_options, 0)
'''

USERS = {"all": ("Customer", "Carrier", "Warehouse"), "customer": ("Customer",)}


def _run(tmp: Path, classes: tuple[str, ...], users: int, seconds: int, env: dict) -> tuple[float, float]:
    """Requests/s of one run, and requests per CPU second of the worker while its users ran."""
    prefix = tmp / f"{classes[0]}-{time.monotonic_ns()}"
    env = {**env, "RH_CPU": f"{prefix}.cpu"}
    subprocess.run([sys.executable, "-m", "locust", "-f", str(tmp / "bench_locustfile.py"), "--headless", "-u", str(users),
                    "-r", str(users), "-t", f"{seconds}s", "--host", env["RH_URL"], "--csv", str(prefix), "--only-summary", *classes],
                   cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=open(tmp / f"{classes[0]}.log", "ab"), check=False)
    with open(f"{prefix}_stats.csv") as f:
        rows = list(csv.DictReader(f))
    if os.environ.get("RH_BENCH_DEBUG"):
        for r in rows:
            print(f"  {r['Type']:5} {r['Name']:32} {r['Request Count']:>7} requests {r['Failure Count']:>5} failures"
                  f" avg {float(r['Average Response Time']):6.2f} ms p50 {r['50%']} p99 {r['99%']} max {float(r['Max Response Time']):.0f}")
    row = next(r for r in rows if r["Name"] == "Aggregated")
    if int(row["Failure Count"]):  # a bench of failing requests measures nothing
        raise SystemExit(f"{' '.join(classes)}: {row['Failure Count']} of {row['Request Count']} requests failed"
                         f" (see {tmp / (classes[0] + '.log')}; RH_BENCH_DEBUG=1 keeps the logs' tails)")
    cpu_s, requests = map(float, Path(f"{prefix}.cpu").read_text().split())
    return float(row["Requests/s"]), requests / cpu_s


def _world(url: str, secret: str):
    """The null receiver's canned answers, and the requests a plain user sends: each of the load's
    requests with the body and headers the load's user would send (signed once)."""
    import orjson

    from load.driver import master_data
    from load.env import seed_config
    from load.webhooks import Signer, envelope
    from simulators.scenario import load

    scenario = load("baseline")
    config = seed_config(scenario, 60_000)  # enough orders that no round runs out
    master = master_data(config.model_dump(mode="json"))
    order = next(o for o in master.orders.values() if o.delivered_at is not None
                 and master.customers[o.customer_id].account_status.value != "on_hold")
    line = order.lines[0]
    requested_at = (order.delivered_at + __import__("datetime").timedelta(days=1)).isoformat()
    ret = {"id": "RET-000001", "order_id": order.id, "customer_id": order.customer_id, "resolution": "refund",
           "currency": "USD", "status": "requested", "requested_at": requested_at,
           "lines": [{"line_number": line.line_number, "item_id": line.item_id, "quantity": 1, "reason": "size_fit",
                      "unit_price": {"amount": line.unit_price.amount, "currency": "USD"}}]}
    approved = {**ret, "status": "approved", "rma_id": "RMA-000001", "label": {"tracking_code": "1Z000001", "carrier": "ups"}}
    tracker = {"tracking_code": "1Z000001", "carrier": "ups", "rma_id": "RMA-000001", "status": "label_created"}
    asn = {"id": "ASN-000001", "site_id": "DC-1", "rma_id": "RMA-000001", "tracking_code": "1Z000001",
           "lines": [{"item_id": line.item_id, "quantity": 1}]}
    receipt = {"id": "RCV-000001", "site_id": "DC-1", "rma_id": "RMA-000001", "tracking_code": "1Z000001",
               "lines": [{"item_id": line.item_id, "quantity": 1}]}
    graded = [{"item_id": line.item_id, "quantity": 1, "condition": "new", "disposition": "restock"}]
    if master.items[line.item_id].serial_controlled:
        graded[0]["serial_numbers"] = ["SN-RET-000001-0-0"]
    inspection = {"id": "INS-000001", "receipt_id": "RCV-000001", "rma_id": "RMA-000001", "lines": graded}
    answers = {"POST returns": (201, ret), "GET returns": (200, approved), "GET trackers": (200, tracker),
               "GET expected-receipts": (200, [asn]), "POST receipts": (201, receipt), "POST inspections": (201, inspection),
               "POST webhooks": (200, {"received": True})}

    signer, n = Signer(secret), iter(range(1, 1_000_000))
    from datetime import UTC, datetime

    def fake(method, path, name, body=None):
        headers = {"authorization": "Bearer key"}
        if body is not None:
            headers["content-type"] = "application/json"
        if method == "POST":
            headers["idempotency-key"] = f"load:evt_bench_w0_{next(n):07d}"
        return [method, url + path, name, headers, None if body is None else orjson.dumps(body).decode()]

    def event(event_type, data):
        event_id = f"evt_bench_w0_{next(n):07d}"
        body = envelope(event_id, event_type, datetime.now(UTC), "RET-000001", data)
        return ["POST", url + "/webhooks", f"webhook {event_type}", signer.headers(event_id, body, "RET-000001"), body.decode()]

    scans = [{"tracking_code": "1Z000001", "carrier": "ups", "rma_id": "RMA-000001", "status": status, "previous_status": previous,
              "message": message, "location": None, "occurred_at": datetime.now(UTC).isoformat()}
             for status, previous, message in (("in_transit", "label_created", "Picked up"),
                                               ("delivered", "in_transit", "Delivered to warehouse dock"))]
    request = {"order_id": order.id, "customer_email": master.customers[order.customer_id].email,
               "lines": [{"line_number": line.line_number, "quantity": 1, "reason": "size_fit"}], "resolution": "refund"}
    plain = {
        "Customer": [fake("POST", "/returns", "portal: POST /returns", request), event("return.created", ret)],
        "Carrier": [fake("GET", "/returns/RET-000001", "portal: GET /returns/{id}"),
                    fake("GET", "/trackers/1Z000001", "carrier: GET /trackers/{code}"),
                    *(event("tracking.updated", scan) for scan in scans)],
        "Warehouse": [fake("GET", "/returns/RET-000001", "portal: GET /returns/{id}"),
                      fake("GET", "/expected-receipts?rma_id=RMA-000001", "wms: GET /expected-receipts"),
                      fake("POST", "/receipts", "wms: POST /receipts", {k: receipt[k] for k in ("site_id", "rma_id", "tracking_code", "lines")}),
                      event("receipt.completed", receipt),
                      fake("POST", "/inspections", "wms: POST /inspections", {"receipt_id": "RCV-000001", "lines": graded}),
                      event("inspection.completed", inspection)],
    }
    return scenario, config, {k: (code, orjson.dumps(v).decode()) for k, (code, v) in answers.items()}, plain


def throughput(args) -> None:
    from load.env import SCHEMA
    from simulators.runner import webhook_secret
    from simulators.sut import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    from simulators.scenario import load

    secret = webhook_secret(load("baseline").seed)
    scenario, config, answers, plain = _world(url, secret)
    classes = USERS[args.mix]
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        (tmp / "answers.json").write_text(json.dumps(answers))
        (tmp / "null.py").write_text(NULL_SERVER)
        (tmp / "bench_locustfile.py").write_text(LOCUSTFILE)
        server = subprocess.Popen([sys.executable, str(tmp / "null.py"), str(port), str(tmp / "answers.json")], stdout=subprocess.PIPE)
        server.stdout.readline()
        creds = {"RH_RETURNS_PORTAL_API_KEY": "key", "RH_WMS_API_KEY": "key", "RH_CARRIER_API_KEY": "key"}
        env_doc = {"schema": SCHEMA, "scenario": "baseline", "seed_config": config.model_dump(mode="json"),
                   "fakes": {s: url for s in ("erp", "wms", "carrier", "returns_portal")}, "credentials": creds,
                   "webhook_url": url + "/webhooks", "secret": secret, "sut": {}, "started_at": time.time()}
        (tmp / "env.json").write_text(json.dumps(env_doc))
        (tmp / "bodies.json").write_text(json.dumps(plain))
        env = {**os.environ, "RH_URL": url, "RH_REPO": str(REPO), "RH_ENV": str(tmp / "env.json"), "RH_BODIES": str(tmp / "bodies.json")}
        ours, base = [], []  # (requests/s, requests per CPU second) per round
        try:
            for n in range(args.rounds):
                # Alternate which side goes first: whatever else the machine does drifts over a round.
                for side in ((ours, base) if n % 2 == 0 else (base, ours)):
                    side.append(_run(tmp, classes if side is ours else tuple(f"Plain{c}" for c in classes), args.users,
                                     args.seconds, env))
                print(f"round {n + 1}: load users {ours[-1][0]:,.0f} req/s ({ours[-1][1]:,.0f} per CPU s),"
                      f" plain FastHttpUser {base[-1][0]:,.0f} req/s ({base[-1][1]:,.0f} per CPU s):"
                      f" {ours[-1][0] / base[-1][0]:.2f}x ({ours[-1][1] / base[-1][1]:.2f}x per CPU s)", flush=True)
        finally:
            server.terminate()
            if os.environ.get("RH_BENCH_DEBUG"):
                for log in tmp.glob("*.log"):
                    print(log.read_text()[-1500:])
    for k, what in ((0, "req/s"), (1, "requests per CPU second of the worker")):
        a, b = statistics.median(o[k] for o in ours), statistics.median(p[k] for p in base)
        ratios = [o[k] / p[k] for o, p in zip(ours, base, strict=True)]
        print(f"one worker process, {args.users} users ({', '.join(classes)}), {args.seconds} s x {args.rounds} rounds, {what}:"
              f" load users {a:,.0f}, plain {b:,.0f}, ratio {a / b:.2f}x (rounds {min(ratios):.2f}-{max(ratios):.2f}x; target >= 0.8x)")


def _knee_run(rate: float, args, root: Path) -> dict:
    """One fixed-rate run of the load against the reference, in a fresh environment."""
    directory = root / f"rate-{rate:g}"
    directory.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "locust", "-f", str(REPO / "load" / "locustfile.py"), "--headless", "-t", f"{args.knee_seconds}s",
           "--rh-dir", str(directory), "--rh-rate", f"{rate:g}", "--rh-settle", str(args.knee_settle),
           "--sla-rma-lag-s", f"p95={args.knee_rma_lag_s:g}", "--csv", str(directory / "stats"), "--only-summary"]
    with open(directory / "locust.log", "wb") as log:
        code = subprocess.run(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, check=False,
                              timeout=args.knee_seconds + args.knee_settle + 240).returncode
    try:
        report = json.loads((directory / "load-report.json").read_text())
    except OSError:
        return {"rate": rate, "ok": False, "code": code, "why": (directory / "locust.log").read_text()[-500:]}
    gates = {g["gate"]: g for g in report["gates"]}
    failed = [f"{g['gate']} {g['observed']}" for g in report["gates"] if g["passed"] is not True]
    ack = report["ack_latency_ms"]
    return {"rate": rate, "ok": code == 0 and not failed, "code": code, "returns": report["returns"],
            "ack_p99": ack["corrected"].get("p99"), "ack_p99_uncorrected": ack["uncorrected"].get("p99"),
            "rma_p95": gates.get("request to RMA p95", {}).get("observed"), "failed": failed}


def knee(args) -> None:
    results: list[dict] = []

    def run(rate: float) -> bool:
        r = _knee_run(rate, args, root)
        results.append(r)
        print(f"{rate:7,.0f} returns/min: {'sustained' if r['ok'] else 'NOT sustained'};"
              f" {r.get('returns')} returns, ack p99 {r.get('ack_p99')} ms corrected ({r.get('ack_p99_uncorrected')} uncorrected),"
              f" request->RMA p95 {r.get('rma_p95')} s" + (f"; failed: {', '.join(r['failed'])}" if r.get("failed") else "")
              + (f"; {r['why']}" if r.get("why") else ""), flush=True)
        return r["ok"]

    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        low, high, rate = 0.0, None, args.knee_start
        while high is None and rate <= args.knee_max:
            if run(rate):
                low, rate = rate, rate * 2
            else:
                high = rate
        for _ in range(args.knee_bisect if high else 0):
            mid = round((low + high) / 2 / 10) * 10
            if mid in (low, high):
                break
            if run(mid):
                low = mid
            else:
                high = mid
    print(f"knee: {low:,.0f} returns/min sustained under the SLA (ack p99 <= scenario's, corrected; request->RMA p95 <="
          f" {args.knee_rma_lag_s:g} s; errors <= 1%; reconciliation ok)"
          + (f", {high:,.0f} not" if high else f" (no failure up to {args.knee_max:,.0f})")
          + f"; {args.knee_seconds} s per run, one Locust process, reference and fakes on the same {os.cpu_count()} cores")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=int, default=8)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--users", type=int, default=21, help="users in the worker (split evenly between the user classes)")
    p.add_argument("--mix", choices=tuple(USERS), default="all", help="all three users (default) or the Customer alone")
    p.add_argument("--knee", action="store_true", help="measure the reference's knee instead (fixed-rate runs)")
    p.add_argument("--knee-seconds", type=int, default=20, help="seconds of load per knee run")
    p.add_argument("--knee-start", type=float, default=120.0, help="first rate, returns/minute (doubled until the SLA breaks)")
    p.add_argument("--knee-max", type=float, default=20_000.0, help="highest rate to try, returns/minute")
    p.add_argument("--knee-bisect", type=int, default=2, help="bisection steps between the last good and first bad rate")
    p.add_argument("--knee-rma-lag-s", type=float, default=5.0, help="request -> RMA p95 gate of a knee run, seconds")
    p.add_argument("--knee-settle", type=float, default=20.0, help="settle seconds of a knee run")
    args = p.parse_args()
    knee(args) if args.knee else throughput(args)


if __name__ == "__main__":
    main()
