"""``returns-harness``: the command line."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    name="returns-harness",
    help="Test harness for the integration layer between an ERP, a WMS, parcel carriers and a returns portal.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion and --show-completion for bash, zsh, fish, PowerShell
    pretty_exceptions_enable=False,
)
# In a pipe or a CI log there is no terminal width to fit: 80 columns would cut check names,
# URLs and credentials, so tables get room to say everything.
console = Console(width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 160)
errors = Console(stderr=True, width=None if sys.stderr.isatty() or os.environ.get("COLUMNS") else 160)

EXIT_USAGE = 2
PLAIN_PROGRESS_EVERY_S = 10.0  # a progress line this often when stdout is no terminal (a CI log)


class Output(str, Enum):
    table = "table"
    json = "json"


FORMAT_HELP = ("table: the verdict table on stdout; json: verdict.json on stdout (for jq or a pipeline), "
               "and everything for people on stderr")


def _people(output: Output) -> Console:
    """Where messages for people go: stdout, unless stdout carries the JSON verdict."""
    return errors if output is Output.json else console


def _plain_progress(out: Console, line: Callable[[], str]) -> Callable[[], None]:
    """Without a terminal the progress bar shows nothing: a plain line every few seconds instead,
    so a CI log is not silent for a minute. ``line()`` says where the run stands."""
    last = [-PLAIN_PROGRESS_EVERY_S]  # the first line at once

    def maybe() -> None:
        if not out.is_terminal and time.monotonic() - last[0] >= PLAIN_PROGRESS_EVERY_S:
            last[0] = time.monotonic()
            out.print(line(), highlight=False, soft_wrap=True)
    return maybe


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            console.print(f"returns-harness {version('returns-harness')}")
        except PackageNotFoundError:
            console.print("returns-harness (not installed: run from a checkout)")
        raise typer.Exit()


@app.callback()
def _root(
    show_version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit")] = False,
) -> None:
    """Test harness for the integration layer between an ERP, a WMS, parcel carriers and a returns portal."""


def _fail(message: str) -> typer.Exit:
    errors.print(f"[bold red]error:[/] {message}")
    return typer.Exit(EXIT_USAGE)


@app.command()
def fakes(
    seed: Annotated[int, typer.Option(help="Seed of the master data (customers, items, orders...); the default is baseline's, "
                                           "so the data you explore is the data `returns-harness run` uses", min=0)] = 1,
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    base_port: Annotated[
        int, typer.Option(help="ERP on base+1, WMS base+2, carrier base+3, returns portal base+4", min=1, max=65531)
    ] = 8100,
    env_file: Annotated[Path, typer.Option(help="Where to write URLs and credentials for the integration layer")] = Path(".env.fakes"),
    random_secrets: Annotated[bool, typer.Option("--random-secrets", help="Random credentials instead of ones fixed by the seed "
                                                                         "(for shared hosts)")] = False,
) -> None:
    """Serve the fake ERP, WMS, carrier and returns portal until Ctrl-C."""
    from simulators.fakekit.auth import random_secrets as randomize
    from simulators.serving import FakeFleet, ServingError

    if random_secrets:
        randomize()

    async def serve() -> None:
        fleet = FakeFleet(seed, host=host, base_port=base_port)
        await fleet.start()
        try:
            from simulators.runner import webhook_secret

            fleet.write_env(env_file, RH_WEBHOOK_SECRET=webhook_secret(seed))
            _print_fleet(fleet, env_file)
            if fleet.admin_token:
                console.print(f"[bold yellow]Listening beyond loopback on {host}[/]: the admin API (/__admin: journal, state, faults, "
                              f"reset) wants [bold]Authorization: Bearer {fleet.admin_token}[/] (shown once, not written to any file).")
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await stop.wait()
            console.print("Stopping the fakes…")
        finally:
            await fleet.stop()

    try:
        with asyncio.Runner(loop_factory=_fast_loop()) as runner:
            runner.run(serve())
    except ServingError as exc:
        raise _fail(str(exc)) from None
    except OSError as exc:
        raise _fail(f"cannot write {env_file}: {exc.strerror or exc}") from None


def _fast_loop():
    """uvloop's event loop when installed (uvicorn[standard] brings it), as uvicorn itself would
    pick and as benchmarks/bench_fakes.py measures: about 8% more requests a core than asyncio's
    own (None), which it falls back to."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


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


EXIT_FAILED, EXIT_UNREACHABLE = 1, 3


def _defect_names() -> list[str]:
    from simulators.sut import known_defects

    return known_defects()


@app.command()
def run(
    scenario: Annotated[str, typer.Argument(help="A shipped scenario (baseline, chaos, ...) or a path to a YAML file")] = "baseline",
    sut_url: Annotated[str | None, typer.Option(help="Webhook URL of your integration layer; default: start the reference")] = None,
    defect: Annotated[list[str], typer.Option(help="Switch on a known defect of the embedded reference (repeatable): "
                                                   + ", ".join(_defect_names()))] = [],  # noqa: B006
    report_dir: Annotated[Path, typer.Option(help="Where verdict.json, junit.xml, report.html and the saved run go")] = Path("rh-report"),
    seed: Annotated[int | None, typer.Option(help="Override the scenario's seed", min=0)] = None,
    time_scale: Annotated[float | None, typer.Option(help="Simulated seconds per wall second (overrides the scenario)", min=1)] = None,
    base_port: Annotated[int | None, typer.Option(help="Serve the fakes on base+1..base+4 (default: 8100 with --sut-url, else free ports)",
                                                  min=1, max=65531)] = None,
    sut_clock: Annotated[str, typer.Option(help="The clock your layer schedules work by: wall (its own; SLAs count its time at face value) "
                                                "or business (it reads the harness's business clock, RH_CLOCK_URL; SLAs in business time)")] = "wall",
    react_delay: Annotated[float, typer.Option(help="The embedded reference waits this many wall seconds before working on each event "
                                                    "(a slower, still correct layer)", min=0, max=3600)] = 0.0,
    sut_start: Annotated[str | None, typer.Option(help="A shell command that starts your layer: run once the fakes are up and "
                                                       ".env.fakes is written (so the layer can read it as it starts), and after "
                                                       "each kill of the nemesis; then the harness waits until --sut-url accepts "
                                                       "connections")] = None,
    sut_wait: Annotated[float, typer.Option(help="Seconds to wait for a --sut-url layer you start yourself: the fakes start, "
                                                 ".env.fakes is written (its path printed), then the run waits (saying how long is left) "
                                                 "until the layer accepts connections; 0: it must be up already", min=0, max=3600)] = 0.0,
    sut_stop: Annotated[str | None, typer.Option(help="A shell command that kills your layer at once (e.g. kill -KILL $(cat "
                                                      "layer.pid)): the kill nemesis, and the end of a run that started it")] = None,
    random_secrets: Annotated[bool, typer.Option("--random-secrets", help="Random credentials and webhook secret instead of ones fixed "
                                                                         "by the seed (for shared hosts; read them from .env.fakes)")] = False,
    run_id: Annotated[str | None, typer.Option(help="Put this label (1-8 lowercase letters or digits) in every id the run sends, "
                                                    "RET-LABEL-000001, so a layer that keeps its state between runs need not be "
                                                    "cleared; default: a fresh one each run; 'fixed': none, the same ids every run")] = None,
    output: Annotated[Output, typer.Option("--format", help=FORMAT_HELP)] = Output.table,
) -> None:
    """Verify an integration layer: run a scenario live against it, settle, reconcile, report.

    Exit code 0 when every invariant and SLA holds, 1 when one fails, 2 for usage or
    configuration errors, 3 when the integration layer is unreachable, died or stopped
    answering; 143 (SIGTERM) or 130 (Ctrl-C) when interrupted, after writing the reports of
    what the run saw until then.
    """
    from simulators.runner import RunOptions
    from simulators.runner import run as run_scenario
    from simulators.scenario import ScenarioError, load
    from simulators.sut import Unreachable, known_defects

    if defect and sut_url:
        raise _fail("--defect switches defects of the embedded reference; it cannot be combined with --sut-url")
    if random_secrets:
        from simulators.fakekit.auth import random_secrets as randomize

        randomize()
    if react_delay and sut_url:
        raise _fail("--react-delay slows the embedded reference; it cannot be combined with --sut-url")
    if (sut_start or sut_stop) and not sut_url:
        raise _fail("--sut-start and --sut-stop are for a --sut-url layer (the harness starts, kills and restarts the embedded reference itself)")
    if sut_wait and not sut_url:
        raise _fail("--sut-wait is for a --sut-url layer you start yourself (the harness starts the embedded reference)")
    if sut_stop and not sut_start:
        raise _fail("--sut-stop needs --sut-start: a layer the harness kills must be started again")
    if sut_clock not in ("wall", "business"):
        raise _fail(f"--sut-clock: expected wall or business, got {sut_clock!r}")
    if sut_clock != "wall" and not sut_url:
        raise _fail("--sut-clock is for a --sut-url layer; the embedded reference says which clock it schedules by")
    known = known_defects()
    unknown = [d for d in defect if d not in known]
    if unknown:
        raise _fail(f"--defect: unknown {', '.join(unknown)}; expected one of: {', '.join(known)}")
    try:
        spec = load(scenario)
    except ScenarioError as exc:
        raise _fail(str(exc)) from None
    _writable_dir(report_dir, "--report-dir")
    updates: dict = {}
    if seed is not None:
        updates["seed"] = seed
    if time_scale is not None:
        updates["time_scale"] = time_scale
    spec = spec.model_copy(update=updates)
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from simulators.serving import ServingError

    from simulators.model.demand import DAY

    out = _people(output)
    if spec.channels.broker is not None:
        out.print(f"{', '.join(spec.channels.broker.events)} go by the message broker at {spec.channels.broker.url} "
                  "(docs/CONTRACT.md, \"Message broker\"); the other events are webhooks")
    if spec.channels.batch is not None:
        b = spec.channels.batch
        out.print(f"{', '.join(b.events)} go in batch files (every {b.every_hours:g} h from {b.at_hour:g}:00) on the harness's "
                  "SFTP server (docs/CONTRACT.md, \"Batch files\"); the other events are webhooks")
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.fields[status]}"), TimeElapsedColumn(),
                  console=out, transient=True) as bar:
        task = bar.add_task(f"{spec.name} (seed {spec.seed})", total=spec.volumes.days * DAY, status="starting")
        began = time.monotonic()
        status = [""]
        plain = _plain_progress(out, lambda: f"{spec.name} (seed {spec.seed}), {time.monotonic() - began:.0f} s: {status[0]}")

        def show(world) -> None:
            delivered = world.deliverer.stats()["delivered"] if world.deliverer else 0
            faults = sum(world.fault_plan.injected.values())
            phase = "settling" if world.model.demand_done else "season"
            status[0] = (f"{phase} day {world.env.now / DAY:5.2f}  {_by_stage(world.model.stages)}"
                         f"  | events delivered {delivered}, faults {faults}")
            bar.update(task, completed=min(world.env.now, spec.volumes.days * DAY), status=status[0])
            plain()

        try:
            verdict = run_scenario(RunOptions(scenario=spec, report_dir=report_dir, sut_url=sut_url, defects=tuple(defect),
                                              sut_clock=sut_clock, react_delay_s=react_delay, sut_start=sut_start, sut_stop=sut_stop,
                                              run_id="" if run_id == "fixed" else run_id, sut_wait_s=sut_wait,
                                              base_port=base_port, progress=show, log=out.print))
        except Unreachable as exc:
            errors.print(f"[bold red]unreachable:[/] {exc}")
            raise typer.Exit(EXIT_UNREACHABLE) from None
        except (ValueError, ServingError) as exc:
            raise _fail(str(exc)) from None
    _finish(verdict, report_dir, output)


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="Where to write the starter files (made if need be)")] = Path("."),
) -> None:
    """Write a starter folder for a team: a scenario to edit, a feature file and its pytest binding."""
    from importlib.resources import files

    starter = files("simulators") / "starter"
    # Source in the package -> file written; the binding is stored as text so it is data, not a module.
    wanted = {"README.md": "README.md", "my-season.yaml": "my-season.yaml", "features/our_returns.feature": "features/our_returns.feature",
              "features/test_our_returns.py.txt": "features/test_our_returns.py"}
    taken = [name for name in wanted.values() if (directory / name).exists()]
    if taken:
        raise _fail(f"{directory}: {', '.join(taken)} already exist; nothing was written (choose another directory)")
    _writable_dir(directory / "features", "DIRECTORY")
    for source, target in wanted.items():
        (directory / target).write_bytes(starter.joinpath(source).read_bytes())
    console.print(f"Wrote {', '.join(str(directory / t) for t in wanted.values())}")
    console.print(f"Next: cd {directory} && returns-harness run my-season.yaml && pytest features/")


@app.command()
def reconcile(
    run_dir: Annotated[Path, typer.Argument(help="A report directory written by `returns-harness run` (or its run/ folder)")],
    report_dir: Annotated[Path | None, typer.Option(help="Write the reports here (default: RUN_DIR)")] = None,
    output: Annotated[Output, typer.Option("--format", help=FORMAT_HELP)] = Output.table,
) -> None:
    """Run the oracle again on a saved run, without running it again."""
    from simulators.runner import reconcile_saved

    if report_dir is not None:
        _writable_dir(report_dir, "--report-dir")
    try:
        with _people(output).status(f"Reconciling the run saved in {run_dir}…"):  # a million returns take ~12 s
            verdict = reconcile_saved(run_dir)
    except (FileNotFoundError, ValueError) as exc:
        raise _fail(str(exc)) from None
    _finish(verdict, report_dir or run_dir, output)


def _writable_dir(path: Path, flag: str) -> None:
    """The directory exists (made if need be) and takes files, or a clear usage error."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".returns-harness-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        what = "is a file, not a directory" if path.exists() and not path.is_dir() else (exc.strerror or str(exc)).lower()
        raise _fail(f"{flag} {path}: {what}; give a directory you can write to") from None


def _by_stage(stages: dict[str, int]) -> str:
    """Where the returns stand, open stages first: "requested 3 · approved 12 · ... · closed 40"."""
    from simulators.model.lifecycle import ended

    flow = ("requested", "approved", "in-transit", "delivered", "received", "inspected")
    shown = sorted((s for s, n in stages.items() if n), key=lambda s: (ended(s), flow.index(s) if s in flow else len(flow), s))
    return " · ".join(f"{s} {stages[s]}" for s in shown) or "no returns yet"


def _finish(verdict: dict, report_dir: Path, output: Output = Output.table) -> None:
    from simulators.report import write_reports

    out = _people(output)
    _print_verdict(verdict, out)
    paths = write_reports(verdict, report_dir)
    out.print(f"Report: [bold]{paths['html']}[/]  (verdict.json, junit.xml beside it)")
    if output is Output.json:
        sys.stdout.buffer.write(paths["verdict"].read_bytes())
        sys.stdout.flush()
    if verdict.get("stopped"):
        signum = verdict["stopped"].get("signal")
        raise typer.Exit(128 + signum if signum else EXIT_UNREACHABLE)  # 143 after SIGTERM, 130 after Ctrl-C
    raise typer.Exit(0 if verdict["ok"] else EXIT_FAILED)


def _print_verdict(verdict: dict, out: Console = console) -> None:
    sut = verdict["sut"]
    who = f"reference{' with ' + ', '.join(sut['defects']) if sut.get('defects') else ''}" if sut["kind"] == "reference" else sut["url"]
    scenario = verdict["scenario"]
    run_id = verdict["summary"].get("run_id")
    table = Table(title=f"{scenario['name']} (seed {scenario['seed']}{', run ' + run_id if run_id else ''}) against {who}")
    table.add_column("check", no_wrap=True)
    table.add_column("verdict", no_wrap=True)
    table.add_column("details")
    table.add_column("exercised (chances a defect had to show)")
    for check in verdict["checks"]:
        label = {True: "[green]PASS[/]", False: "[bold red]FAIL[/]", None: "[yellow]UNKNOWN[/]"}[check["valid"]]
        if check["kind"] == "sla" and check["sla"] and check["sla"]["observed"] is not None:
            sla = check["sla"]
            details = f"p{sla['percentile']:g} {sla['observed']:g} {sla['unit']} (limit {sla['threshold']:g}, {sla['samples']} samples)"
        else:
            details = ", ".join(f"{k} {v}" for k, v in check["counts"].items()) or ("error: see report" if check["error"] else "")
        if check["valid"] is None and check.get("reason"):
            details = f"{details}; {check['reason']}" if details else check["reason"]
        exercised = "; ".join(f"{k} {v}" for k, v in (check.get("exposure") or {}).items())
        table.add_row(check["name"], label, details, exercised)
    if verdict.get("stopped"):
        out.print(f"[bold red]STOPPED[/] at {verdict['stopped']['at']}: {verdict['stopped']['reason']}")
    time, load, harness = verdict.get("time"), verdict.get("load"), verdict.get("harness") or {}
    if time:
        out.print(f"Clock: {time['clock']} ({time['sentence']}); one wall second = {time['one_wall_second']}")
    if load:
        out.print(f"Load on the layer: {load['deliveries']:,} deliveries, peak {load['peak_per_second']:,} a wall second "
                  f"(mean {load['mean_per_second']:g}), at most {load['peak_in_flight']:,} in flight")
    if harness.get("behind"):
        out.print(f"[bold yellow]HARNESS BEHIND[/]: {harness['advice']}")
    for silence in verdict.get("layer_silences") or ():
        out.print(f"[bold yellow]LAYER SILENT[/] for {silence['seconds']:g} s: {silence['unanswered']} deliveries unanswered "
                  f"({silence['error']}); the harness gave up on {len(silence['given_up'])} return(s)'s deliveries then")
    out.print(table)
    failed = [c for c in verdict["checks"] if c["valid"] is False]
    for check in failed:
        for violation in check["violations"][:3]:
            out.print(f"  [red]{check['name']}[/] {violation['return_id']}: {violation['message']}")
    if verdict.get("stopped"):
        out.print(f"[bold red]STOPPED[/]: {verdict['stopped']['reason']}; the checks above cover the run until then")
    elif verdict["ok"]:
        out.print("[bold green]PASS[/]")
    elif failed:
        out.print(f"[bold red]FAIL[/]: {len(failed)} check(s) failed")
    else:
        out.print("[bold red]FAIL[/]: no check could decide anything (did any return happen?)")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
