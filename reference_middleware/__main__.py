"""``python -m reference_middleware`` (also ``returns-harness reference``): serve the reference."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from pydantic import ValidationError

from reference_middleware.defects import Defect, parse_defects
from reference_middleware.settings import ConfigError, load_settings, redacted

cli = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
LOG_LEVELS = ("debug", "info", "warning", "error")


@cli.command(help="Serve the reference integration layer: webhooks in, calls to the fakes out.")
def serve(
    port: Annotated[int, typer.Option(help="Port of the webhook intake and status API", min=0, max=65535)] = 8200,
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    fakes_env: Annotated[Path, typer.Option(help="The env file `returns-harness fakes` wrote")] = Path(".env.fakes"),
    webhook_secret: Annotated[str | None, typer.Option(help="Standard Webhooks secret (default: $RH_WEBHOOK_SECRET)")] = None,
    database: Annotated[str, typer.Option(help="sqlite:///FILE (relative; sqlite:////FILE absolute), sqlite://:memory: or postgresql://...")] = "sqlite:///reference.sqlite3",
    defect: Annotated[list[str], typer.Option(help=f"Switch on a known defect (repeatable): {', '.join(Defect)}")] = [],  # noqa: B006
    workers: Annotated[int, typer.Option(help="Returns worked on at once", min=1)] = 8,
    react_delay: Annotated[float, typer.Option(help="Wall seconds each event waits before it is worked on (try a slower layer; "
                                                    "not a defect: a correct layer that takes this long must still pass)",
                                               min=0, max=3600)] = 0.0,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error")] = "warning",
) -> None:
    if log_level.lower() not in LOG_LEVELS:
        typer.echo(f"error: --log-level: expected one of {', '.join(LOG_LEVELS)}, got {log_level!r}", err=True)
        raise typer.Exit(2)
    try:
        settings = load_settings(fakes_env, webhook_secret=webhook_secret, database=database,
                                 defects=parse_defects(defect), workers=workers, react_delay_s=react_delay)
    except (ConfigError, ValueError, ValidationError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    try:
        asyncio.run(_can_open(database))
    except Exception as e:  # noqa: BLE001 (sqlite3, psycopg and OS errors alike: say which and stop)
        typer.echo(f"error: --database: cannot open {redacted(database)}: {str(e).replace(database, redacted(database))}", err=True)
        raise typer.Exit(2) from None
    from reference_middleware.app import create_app

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    typer.echo(f"reference integration layer on http://{host}:{port}/webhooks"
               f" (defects: {', '.join(sorted(settings.defects)) or 'none'}; storage: {redacted(database)})", err=True)
    uvicorn.run(create_app(settings), host=host, port=port, log_level=log_level, access_log=False)


async def _can_open(url: str) -> None:
    """Open the storage once before serving, so a bad URL is a clear error, not a failed startup."""
    from reference_middleware.store import open_database

    db = await open_database(url)
    await db.close()


if __name__ == "__main__":
    sys.exit(cli(prog_name="returns-harness reference"))  # also `python -m reference_middleware`
