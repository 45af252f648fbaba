"""The load environment: the four fakes and, unless a URL is given, the reference integration
layer beside them, served until stopped; everything a load generator needs goes to one file.

    python -m load.env --dir rh-load [--sut-url URL] [--defect NAME] [--orders N] [--base-port P]

It writes ``DIR/load-env.json`` once everything answers (and removes it when stopping), and
``DIR/.env.fakes`` for an integration layer. It never imports Locust: gevent's patches must
stay out of the fakes' event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path

from simulators.runner import webhook_secret
from simulators.scenario import ScenarioError
from simulators.scenario import load as load_scenario
from simulators.seed import SeedConfig, generate
from simulators.serving import FakeFleet, ServingError, write_env_file, write_private
from simulators.sut import ReferenceProcess, Unreachable, check_reachable

ENV_FILE = "load-env.json"
SCHEMA = "returns-harness/load-env/1"
# Enough returnable order lines for minutes of peak load (the scenarios' 1,500 last seconds).
DEFAULT_ORDERS = 20_000


def seed_config(scenario, orders: int | None) -> SeedConfig:
    sizes = scenario.seed_data.model_dump()
    if orders is not None:
        sizes["orders"] = orders
    return SeedConfig(seed=scenario.seed, epoch=scenario.epoch, **sizes)


def read_env(path: Path) -> dict:
    """The environment a load runs against, or ValueError saying what is wrong with the file."""
    try:
        env = json.loads(path.read_text())
    except OSError as e:
        raise ValueError(f"cannot read the load environment {path}: {e.strerror or e}") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not a load environment (not JSON: {e})") from None
    if not isinstance(env, dict) or env.get("schema") != SCHEMA:
        raise ValueError(f"{path} is not a load environment (expected schema {SCHEMA!r})")
    return env


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m load.env", description=__doc__.split("\n\n")[0])
    p.add_argument("--dir", type=Path, default=Path("rh-load"), help="where load-env.json, journals and the reference's files go")
    p.add_argument("--scenario", default="baseline", help="scenario name or YAML path: seed, policy, SLAs (default: baseline)")
    p.add_argument("--orders", type=int, default=DEFAULT_ORDERS, help=f"seeded sales orders (default {DEFAULT_ORDERS})")
    p.add_argument("--host", default="127.0.0.1", help="address the fakes listen on (0.0.0.0 for workers on other machines)")
    p.add_argument("--base-port", type=int, default=0, help="fakes on base+1..base+4 (default 0: free ports)")
    p.add_argument("--sut-url", default=None, help="your integration layer's webhook URL (default: start the reference)")
    p.add_argument("--defect", action="append", default=[], help="switch on a reference defect (repeatable)")
    p.add_argument("--stop-with", type=int, default=0, metavar="PID",
                   help="stop when the parent process PID ends (the Locust master that started this one)")
    return p


def _check(args: argparse.Namespace) -> str | None:
    if args.orders < 1:
        return f"--orders must be at least 1, got {args.orders}"
    if not 0 <= args.base_port <= 65_530:
        return f"--base-port must be between 0 and 65530, got {args.base_port}"
    if args.sut_url and args.defect:
        return "--defect applies to the embedded reference only; drop it or drop --sut-url"
    return None


async def serve(args: argparse.Namespace, scenario) -> None:
    directory: Path = args.dir.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / ENV_FILE).unlink(missing_ok=True)
    master = generate(seed_config(scenario, args.orders))
    secret = webhook_secret(scenario.seed)
    fleet = FakeFleet(master=master, host=args.host, base_port=args.base_port, spill_dir=directory / "journals")
    for old in (directory / "journals").glob("*.jsonl"):
        old.unlink()
    await fleet.start()
    reference = None
    try:
        fakes_env = {**fleet.env(), "RH_WEBHOOK_SECRET": secret}
        write_env_file(directory / ".env.fakes", fakes_env)
        if args.sut_url:
            webhook_url = args.sut_url
        else:
            (directory / "reference.sqlite3").unlink(missing_ok=True)
            reference = ReferenceProcess(directory, secret, tuple(args.defect), f"sqlite:///{directory / 'reference.sqlite3'}")
            reference.start()
            await asyncio.to_thread(reference.wait_healthy)
            webhook_url = reference.url + "/webhooks"
        env = {
            "schema": SCHEMA,
            "scenario": str(args.scenario),
            "seed_config": master.config.model_dump(mode="json"),
            "fakes": {name: fake.url for name, fake in fleet.fakes.items()},
            "credentials": fakes_env,
            "admin_token": fleet.admin_token,  # set when the fakes listen beyond loopback
            "webhook_url": webhook_url,
            "secret": secret,
            "sut": {"kind": "external" if args.sut_url else "reference", "url": webhook_url, "defects": list(args.defect)},
            "reference_pid": reference.proc.pid if reference else None,
            "pid": os.getpid(),
            "started_at": time.time(),
        }
        tmp = directory / (ENV_FILE + ".tmp")
        write_private(tmp, json.dumps(env, indent=1))  # it holds the webhook secret and the admin token
        tmp.replace(directory / ENV_FILE)  # readers never see half a file
        print(f"load environment ready: {directory / ENV_FILE} (webhooks to {webhook_url})", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if args.stop_with:
            watch = asyncio.create_task(_stop_with(args.stop_with, stop))
        await stop.wait()
        if args.stop_with:
            watch.cancel()
    finally:
        (directory / ENV_FILE).unlink(missing_ok=True)
        if reference is not None:
            reference.stop()
        await fleet.stop()


async def _stop_with(pid: int, stop: asyncio.Event) -> None:
    """Set ``stop`` once ``pid`` is gone: a master killed outright (SIGKILL) cannot stop us itself,
    and we run in a session of our own, out of reach of its terminal's Ctrl-C."""
    while os.getppid() == pid:
        await asyncio.sleep(1.0)
    print(f"load environment: process {pid} ended; stopping", flush=True)
    stop.set()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    problem = _check(args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        scenario = load_scenario(args.scenario)
    except ScenarioError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        if args.sut_url:
            check_reachable(args.sut_url)
        asyncio.run(serve(args, scenario))
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (ServingError, Unreachable) as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
