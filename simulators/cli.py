"""``returns-harness``: the command line."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    name="returns-harness",
    help="Test harness for the integration layer between an ERP, a WMS, parcel carriers and a returns portal.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
errors = Console(stderr=True)

EXIT_USAGE = 2


@app.callback()
def _root() -> None:
    """Test harness for the integration layer between an ERP, a WMS, parcel carriers and a returns portal."""


def _fail(message: str) -> typer.Exit:
    errors.print(f"[bold red]error:[/] {message}")
    return typer.Exit(EXIT_USAGE)


@app.command()
def fakes(
    seed: Annotated[int, typer.Option(help="Seed of the master data (customers, items, orders...)", min=0)] = 0,
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    base_port: Annotated[
        int, typer.Option(help="ERP on base+1, WMS base+2, carrier base+3, returns portal base+4", min=1, max=65531)
    ] = 8100,
    env_file: Annotated[Path, typer.Option(help="Where to write URLs and credentials for the integration layer")] = Path(".env.fakes"),
) -> None:
    """Serve the fake ERP, WMS, carrier and returns portal until Ctrl-C."""
    from simulators.serving import FakeFleet, ServingError

    async def serve() -> None:
        fleet = FakeFleet(seed, host=host, base_port=base_port)
        await fleet.start()
        try:
            fleet.write_env(env_file)
            _print_fleet(fleet, env_file)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await stop.wait()
            console.print("Stopping the fakes…")
        finally:
            await fleet.stop()

    try:
        asyncio.run(serve())
    except ServingError as exc:
        raise _fail(str(exc)) from None
    except OSError as exc:
        raise _fail(f"cannot write {env_file}: {exc.strerror or exc}") from None


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []})
def reference(ctx: typer.Context) -> None:
    """Serve the reference integration layer; `returns-harness reference --help` lists its options.

    It runs as its own program (`python -m reference_middleware`), the way a user's middleware
    would: the harness never imports it.
    """
    os.execv(sys.executable, [sys.executable, "-m", "reference_middleware", *ctx.args])


@app.command()
def simulate(
    scenario: Annotated[str, typer.Argument(help="A shipped scenario (baseline, peak-season, ...) or a path to a YAML file")],
    out: Annotated[Path | None, typer.Option(help="Write the full event trace here, as JSON lines")] = None,
    returns: Annotated[int | None, typer.Option(help="Stop after this many return requests", min=1)] = None,
    seed: Annotated[int | None, typer.Option(help="Override the scenario's seed", min=0)] = None,
) -> None:
    """Run a scenario in virtual time (no integration layer) and summarise what happened."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from simulators.model.demand import DAY
    from simulators.scenario import ScenarioError, load
    from simulators.world import World

    try:
        spec = load(scenario)
    except ScenarioError as exc:
        raise _fail(str(exc)) from None
    updates = {}
    if seed is not None:
        updates["seed"] = seed
    if returns is not None:
        updates["volumes"] = spec.volumes.model_copy(update={"max_returns": returns})
    spec = spec.model_copy(update=updates)
    try:
        sink = out.open("wb") if out else None
    except OSError as exc:
        raise _fail(f"cannot write {out}: {exc.strerror or exc}") from None
    with sink or contextlib.nullcontext(), Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.fields[status]}"), TimeElapsedColumn(),
        console=console, transient=True,
    ) as bar:
        world = World(spec, trace_sink=sink)
        task = bar.add_task(f"simulating {spec.name}", total=spec.volumes.days * DAY, status="")

        def show(w: World) -> None:
            day = w.env.now / DAY
            bar.update(task, completed=min(w.env.now, spec.volumes.days * DAY),
                       status=f"day {day:5.1f}  requested {w.model.requested}  open {w.open_returns}")

        world.run_virtual(progress=show)
    _print_summary(world.summary(), out)


def _print_summary(summary: dict, out: Path | None) -> None:
    table = Table(title=f"{summary['scenario']} (seed {summary['seed']}): {summary['returns']} returns over {summary['simulated_days']} simulated days")
    table.add_column("outcome")
    table.add_column("returns", justify="right")
    for outcome, n in summary["by_outcome"].items():
        table.add_row(outcome, str(n))
    console.print(table)
    events = ", ".join(f"{k} {v}" for k, v in summary["events"].items())
    console.print(f"Events for the integration layer: {events}")
    faults = ", ".join(f"{k} {v}" for k, v in summary["faults_injected"].items()) or "none"
    console.print(f"Faults injected into deliveries: {faults}")
    peak = summary["peak_inspection_backlog"]
    console.print(f"Peak inspection backlog: {peak['returns']} returns (day {peak['at_day']})")
    if out:
        console.print(f"Trace written to [bold]{out}[/]")


def _print_fleet(fleet, env_file: Path) -> None:
    table = Table(title=f"Fake systems (seed {fleet.master.config.seed})")
    table.add_column("system")
    table.add_column("URL")
    table.add_column("API docs")
    table.add_column("credentials")
    for name, fake in fleet.fakes.items():
        c = fake.credentials
        creds = f"API key {c.api_key}" if c.api_key else f"client {c.client_id} / {c.client_secret} (token: {fake.url}/oauth/token)"
        table.add_row(name, fake.url, f"{fake.url}/docs", creds)
    console.print(table)
    console.print(f"Wrote URLs and credentials to [bold]{env_file}[/]. Journal and faults: <URL>/__admin. Ctrl-C stops.")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
