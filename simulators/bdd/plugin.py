"""The pytest plugin (entry point ``pytest11``): options, the world fixture, and the steps.

Loaded by every pytest run once the package is installed, so it stays cheap: the world, the
fakes and the oracle are imported only when a scenario runs.

- ``--rh-sut-url URL``: the integration layer's webhook URL; without it, each world runs against
  the embedded reference (its own process), as ``returns-harness run`` does.
- ``--rh-defect NAME`` (repeatable): switch on a known defect of the embedded reference.
- ``--rh-fakes-base-port N``: serve the fakes on N+1..N+4 (default 8100 with --rh-sut-url, so a
  layer configured once keeps working; free ports otherwise).

The prefix keeps them from clashing with a team's own plugins. The old names (``--sut-url``,
``--defect``, ``--fakes-base-port``) still work for this release, with a deprecation warning.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from simulators.bdd.vocabulary import StepValueError

pytest_plugins = ["simulators.bdd.steps.given", "simulators.bdd.steps.faults", "simulators.bdd.steps.when",
                  "simulators.bdd.steps.then"]

# Tags of the shipped features; registered so -m works and --strict-markers accepts them.
MARKERS = {
    "happy_path": "a return goes through end to end, one per disposition and resolution",
    "eligibility": "returns the policy refuses (outside the window, customer on hold)",
    "duplicates": "duplicate and semantically duplicate webhooks",
    "ordering": "out-of-order scans, inspection before receipt",
    "refunds": "credit memos: after inspection, with the policy's amount",
    "erp_outage": "an ERP maintenance window",
    "rate_limit": "an ERP that answers 429 with Retry-After",
    "lost_responses": "writes committed whose response is lost",
    "receiving": "partial receipts and split dispositions",
    "bad_input": "forged, stale and malformed deliveries",
    "sla": "service levels under a January peak",
    "broker": "warehouse facts over RabbitMQ: stored before acked, poison dead-lettered (needs a broker)",
    "batch": "warehouse facts in CSV files over SFTP: a file cut short refused whole",
}
SCENARIO = pytest.StashKey[tuple]()


DEPRECATED = {"--sut-url": "--rh-sut-url", "--defect": "--rh-defect", "--fakes-base-port": "--rh-fakes-base-port"}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("returns-harness", "returns-harness Gherkin steps")
    group.addoption("--rh-sut-url", "--sut-url", dest="rh_sut_url", default=None, metavar="URL",
                    help="webhook URL of the integration layer under test (default: start the embedded reference)")
    group.addoption("--rh-defect", "--defect", dest="rh_defect", action="append", default=[], metavar="NAME",
                    help="switch on a known defect of the embedded reference (repeatable)")
    group.addoption("--rh-fakes-base-port", "--fakes-base-port", dest="rh_fakes_base_port", type=int, default=None, metavar="N",
                    help="serve the fakes on ports N+1..N+4 (default: 8100 with --rh-sut-url, free ports otherwise)")


def pytest_configure(config: pytest.Config) -> None:
    for name, meaning in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {meaning}")
    for old, new in DEPRECATED.items():
        if any(arg == old or arg.startswith(old + "=") for arg in config.invocation_params.args):
            config.issue_config_time_warning(pytest.PytestDeprecationWarning(
                f"{old} is deprecated and goes in the next release: use {new} (the prefix keeps it clear of other plugins' options)"),
                stacklevel=2)
    defects = config.getoption("rh_defect", default=None) or []
    if defects and config.getoption("rh_sut_url", default=None):
        raise pytest.UsageError("--rh-defect switches defects of the embedded reference; it cannot be combined with --rh-sut-url")
    if defects:
        from simulators.sut import known_defects

        known = known_defects()
        unknown = [d for d in defects if d not in known]
        if unknown:
            raise pytest.UsageError(f"--rh-defect: unknown {', '.join(unknown)}; expected one of: {', '.join(known)}")


@pytest.fixture(scope="session")
def returns_runs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """The session's live runs: one per distinct world, against the chosen integration layer."""
    from simulators.bdd.world import Runs

    config = request.config
    return Runs(root=tmp_path_factory.mktemp("returns-harness"), sut_url=config.getoption("rh_sut_url"),
                defects=tuple(config.getoption("rh_defect")), base_port=config.getoption("rh_fakes_base_port"))


@pytest.fixture
def returns_world(request: pytest.FixtureRequest, returns_runs):
    """The world of one Gherkin scenario: Given steps build it, the first answer runs it."""
    from simulators.bdd.world import WorldUnderTest

    feature, scenario = request.node.stash.get(SCENARIO, (None, None))
    base_dir = Path(feature.filename).parent if feature is not None else None
    return WorldUnderTest(returns_runs, scenario.name if scenario is not None else request.node.name, base_dir)


def pytest_bdd_before_scenario(request: pytest.FixtureRequest, feature, scenario) -> None:
    request.node.stash[SCENARIO] = (feature, scenario)


def pytest_bdd_step_error(request, feature, scenario, step, step_func, step_func_args, exception) -> None:
    """A step that refused its value: say which step, where, before what was wrong."""
    if isinstance(exception, StepValueError):
        where = f"{Path(feature.filename).name}:{step.line_number}"
        exception.msg = f'step "{step.keyword} {step.name}" ({where}): {exception.msg}'
