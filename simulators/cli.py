"""``returns-harness``: the command line."""

from __future__ import annotations

import asyncio
import signal
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
