"""Requests/s one Locust worker process generates with the load's users, against a baseline.

The load's :class:`load.users.Customer` (pick an order, POST /returns, build and sign the
``return.created`` envelope, record open-loop latency, keep its journey) against a plain
``FastHttpUser`` posting the same two bodies (precomputed, unsigned work done once) in the same
run, both against a null receiver (a raw asyncio HTTP server in its own process that answers
every request with the same canned portal return). Rounds alternate; the ratio of medians is
reported. Target: >= 0.8x.

    python benchmarks/bench_load.py [--seconds 8] [--rounds 3] [--users 20]
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
import asyncio, sys
BODY = open(sys.argv[2], "rb").read()
HEAD = b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(BODY)
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
            head = self.buf[:end].lower()
            n = 0
            for line in head.split(b"\r\n"):
                if line.startswith(b"content-length:"): n = int(line.split(b":")[1])
            if len(self.buf) < end + 4 + n: return
            self.buf = self.buf[end + 4 + n:]
            self.t.write(HEAD + BODY)
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
from load.users import Customer as _Customer
from load.driver import Context

class Customer(_Customer):
    wait_time = constant(0)

class Plain(FastHttpUser):
    wait_time = constant(0)
    def on_start(self):
        self.bodies = json.load(open(os.environ["RH_BODIES"]))
        self.portal, self.hook = self.bodies["portal_url"], self.bodies["webhook_url"]
        self.a, self.b = self.bodies["return"].encode(), self.bodies["event"].encode()
        self.ha, self.hb = self.bodies["portal_headers"], self.bodies["event_headers"]
    @task
    def post(self):
        self.client.post(self.portal, data=self.a, headers=self.ha, name="plain: POST /returns")
        self.client.post(self.hook, data=self.b, headers=self.hb, name="plain: webhook")

@events.init_command_line_parser.add_listener
def _opts(parser):
    for name, default in (("--rh-env-json", ""), ("--rh-run", "bench")):
        parser.add_argument(name, default=default)
    parser.add_argument("--rh-partitions", type=int, default=1)
    for name in ("--rh-pace", "--rh-duplicate-rate", "--rh-ship-after", "--rh-receive-after"):
        parser.add_argument(name, type=float, default=0.0)

@events.init.add_listener
def _start(environment, **kw):  # before the clock starts: building the orders takes a while
    environment.parsed_options.rh_env_json = open(os.environ["RH_ENV"]).read()
    environment.parsed_options.rh_pace = 1e-9
    environment.rh = Context(environment.parsed_options, 0)
'''


def _run(tmp: Path, user: str, users: int, seconds: int, env: dict) -> float:
    prefix = tmp / f"{user}-{time.monotonic_ns()}"
    subprocess.run([sys.executable, "-m", "locust", "-f", str(tmp / "bench_locustfile.py"), "--headless", "-u", str(users),
                    "-r", str(users), "-t", f"{seconds}s", "--host", env["RH_URL"], "--csv", str(prefix), "--only-summary", user],
                   cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=open(tmp / f"{user}.log", "ab"), check=False)
    with open(f"{prefix}_stats.csv") as f:
        row = next(r for r in csv.DictReader(f) if r["Name"] == "Aggregated")
    return float(row["Requests/s"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=int, default=8)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--users", type=int, default=20)
    args = p.parse_args()

    from load.driver import master_data
    from load.env import SCHEMA, seed_config
    from load.webhooks import Signer, envelope
    from simulators.runner import webhook_secret
    from simulators.scenario import load

    scenario = load("baseline")
    config = seed_config(scenario, 60_000)  # enough orders that no round runs out
    master = master_data(config.model_dump(mode="json"))
    order = next(o for o in master.orders.values() if o.delivered_at is not None)
    line = order.lines[0]
    ret = {"id": "RET-000001", "order_id": order.id, "customer_id": order.customer_id, "resolution": "refund",
           "currency": "USD", "status": "requested", "requested_at": "2026-12-26T00:00:01+00:00",
           "lines": [{"line_number": line.line_number, "item_id": line.item_id, "quantity": 1, "reason": "size_fit",
                      "unit_price": {"amount": line.unit_price.amount, "currency": "USD"}}]}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        (tmp / "answer.json").write_text(json.dumps(ret))
        (tmp / "null.py").write_text(NULL_SERVER)
        (tmp / "bench_locustfile.py").write_text(LOCUSTFILE)
        from simulators.sut import free_port

        port = free_port()
        server = subprocess.Popen([sys.executable, str(tmp / "null.py"), str(port), str(tmp / "answer.json")], stdout=subprocess.PIPE)
        server.stdout.readline()
        url = f"http://127.0.0.1:{port}"
        secret = webhook_secret(scenario.seed)
        creds = {"RH_RETURNS_PORTAL_API_KEY": "pk", "RH_WMS_API_KEY": "wk", "RH_CARRIER_API_KEY": "ck"}
        env_doc = {"schema": SCHEMA, "scenario": "baseline", "seed_config": config.model_dump(mode="json"),
                   "fakes": {s: url for s in ("erp", "wms", "carrier", "returns_portal")}, "credentials": creds,
                   "webhook_url": url + "/webhooks", "secret": secret, "sut": {}, "started_at": time.time()}
        (tmp / "env.json").write_text(json.dumps(env_doc))
        request = {"order_id": order.id, "customer_email": "x@example.com", "resolution": "refund",
                   "lines": [{"line_number": line.line_number, "quantity": 1, "reason": "size_fit"}]}
        body = envelope("evt_1", "return.created", time.time() and __import__("datetime").datetime.now(), "RET-000001", ret)
        bodies = {"portal_url": url + "/returns", "webhook_url": url + "/webhooks", "return": json.dumps(request),
                  "event": body.decode(), "portal_headers": {"authorization": "Bearer pk", "content-type": "application/json",
                                                             "idempotency-key": "load:evt_1"},
                  "event_headers": Signer(secret).headers("evt_1", body, "RET-000001")}
        (tmp / "bodies.json").write_text(json.dumps(bodies))
        env = {**os.environ, "RH_URL": url, "RH_REPO": str(REPO), "RH_ENV": str(tmp / "env.json"), "RH_BODIES": str(tmp / "bodies.json")}
        ours, plain = [], []
        try:
            for n in range(args.rounds):
                ours.append(_run(tmp, "Customer", args.users, args.seconds, env))
                plain.append(_run(tmp, "Plain", args.users, args.seconds, env))
                print(f"round {n + 1}: load users {ours[-1]:,.0f} req/s, plain FastHttpUser {plain[-1]:,.0f} req/s", flush=True)
        finally:
            server.terminate()
            if os.environ.get("RH_BENCH_DEBUG"):
                for log in tmp.glob("*.log"):
                    print(log.read_text()[-1500:])
    a, b = statistics.median(ours), statistics.median(plain)
    print(f"one worker process, {args.users} users, {args.seconds} s x {args.rounds} rounds:"
          f" load users {a:,.0f} req/s, plain {b:,.0f} req/s, ratio {a / b:.2f}x (target >= 0.8x)")


if __name__ == "__main__":
    main()
