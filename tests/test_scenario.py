"""Scenario files: the shipped ones load and make sense; a bad file says where and what was expected."""

from __future__ import annotations

import inspect
import re
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from simulators import scenario as sc
from simulators.scenario import Scenario, ScenarioError, load, parse, shipped

DOCS = Path(__file__).resolve().parent.parent / "docs" / "MODEL.md"
REQUIRED = {"baseline", "peak-season", "duplicate-storm", "out-of-order", "erp-outage", "rate-limited", "lost-responses", "chaos"}
# A run lasts its request window plus the settle (the slowest customers take about two weeks
# to ship and be inspected); the shipped files aim at well under a minute of wall time.
SETTLE_DAYS = 14
WALL_BUDGET_S = 60


def test_shipped_lists_the_eight_scenarios():
    assert REQUIRED <= set(shipped())


@pytest.mark.parametrize("name", sorted(shipped()))
def test_shipped_scenario_loads_and_is_described(name):
    s = load(name)
    assert s.name == name, "a shipped file's name: must be its file name"
    assert len(s.description) > 80, "say what it exercises and what a failure shows"
    assert (s.volumes.days + SETTLE_DAYS) * 86_400 / s.time_scale < WALL_BUDGET_S
    end = s.epoch + timedelta(days=s.volumes.days + SETTLE_DAYS)
    for rule in s.faults.api:  # a fault window outside the run would never fire
        for at in (rule.active_from, rule.active_until):
            assert at is None or s.epoch <= at <= end


def test_a_shipped_scenario_loads_by_path_too():
    assert load(sc.SCENARIO_DIR / "baseline.yaml") == load("baseline")


def test_fault_scenarios_have_their_faults():
    assert load("baseline").faults == sc.Faults()
    assert load("duplicate-storm").faults.events.duplicate_rate > 0
    assert load("out-of-order").faults.events.reorder_rate > 0
    kinds = {name: {(r.system, r.kind.value) for r in load(name).faults.api} for name in REQUIRED}
    assert ("erp", "outage") in kinds["erp-outage"] and ("erp", "error") in kinds["erp-outage"]
    assert {("erp", "rate_limit"), ("erp", "concurrency_limit")} <= kinds["rate-limited"]
    assert {("erp", "commit_then_lose"), ("wms", "commit_then_lose")} <= kinds["lost-responses"]
    assert set().union(*(kinds[n] for n in REQUIRED - {"chaos"})) <= kinds["chaos"]
    peak = load("peak-season")
    assert peak.volumes.profile == "post-holiday-peak"


# --- bad files -----------------------------------------------------------------------------

def _error(tmp_path: Path, text: str) -> str:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as info:
        load(path)
    message = str(info.value)
    assert str(path) in message, "the message names the file"
    return message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: x\nvolums:\n  days: 1\n", ["volums", "unknown setting", "did you mean 'volumes'", "expected one of"]),
        ("name: x\nfaults:\n  api:\n    - {system: erp, kind: error, probabilty: 0.1}\n",
         ["faults.api.0.probabilty", "did you mean 'probability'"]),
        ("name: x\nvolumes:\n  days: ten\n", ["volumes.days", "valid number"]),
        ("name: x\nfaults:\n  events:\n    duplicate_rate: 1.5\n", ["faults.events.duplicate_rate", "less than or equal to 1"]),
        ("name: x\ncustomer:\n  resolution_mix: {refund: 0.5, exchange: 0.2}\n", ["customer", "resolution_mix", "add up to 1", "0.7"]),
        ("name: x\nwarehouse:\n  disposition_by_condition:\n    new: {restock: 0.5}\n", ["disposition_by_condition.new", "add up to 1"]),
        ("name: x\nwarehouse:\n  disposition_by_condition:\n    new: {restock: 1}\n", ["needs a mix for every condition", "defective"]),
        ("name: x\nwarehouse:\n  shift_start_hour: 14\n  shift_end_hour: 8\n", ["warehouse", "shift_end_hour must be after shift_start_hour"]),
        ("name: x\nfaults:\n  api:\n    - {system: crm, kind: error}\n", ["faults.api.0.system", "'erp', 'wms', 'carrier' or 'returns_portal'"]),
        ("name: x\nfaults:\n  api:\n    - {system: erp, kind: explode}\n", ["faults.api.0.kind", "'outage'"]),
        ("name: x\nvolumes:\n  profile: christmas\n", ["volumes.profile", "'post-holiday-peak'"]),
        ("description: no name\n", ["name", "Field required"]),
        ("name: x\nvolumes: {days: [1\n", ["not valid YAML", "line 3"]),
        ("- name: x\n", ["expected a mapping of settings at the top level, got list"]),
        ("", ["expected a mapping of settings at the top level, got NoneType"]),
    ],
    ids=["unknown-key", "unknown-key-in-fault", "wrong-type", "rate-out-of-range", "shares", "disposition-shares", "disposition-missing",
         "shift-order", "unknown-system", "unknown-fault-kind", "unknown-profile", "missing-name", "broken-yaml",
         "list-top-level", "empty-file"],
)
def test_a_bad_file_says_where_and_what_was_expected(tmp_path, text, expected):
    message = _error(tmp_path, text)
    for part in expected:
        assert part in message


def test_every_problem_in_a_file_is_reported_at_once(tmp_path):
    message = _error(tmp_path, "name: x\nvolumes: {days: 0}\nslas: {ack_latency_ms_p99: -1}\n")
    assert "2 problem(s)" in message and "volumes.days" in message and "slas.ack_latency_ms_p99" in message


def test_unknown_scenario_name_lists_the_shipped_ones():
    with pytest.raises(ScenarioError) as info:
        load("basline")
    message = str(info.value)
    assert "'basline'" in message
    for name in shipped():
        assert name in message


@pytest.mark.parametrize("what", ["missing", "directory"])
def test_unreadable_path(tmp_path, what):
    path = tmp_path / "gone.yaml"
    if what == "directory":
        path.mkdir()
    with pytest.raises(ScenarioError) as info:
        load(path)
    assert str(path) in str(info.value) and "cannot read" in str(info.value)


def test_parse_names_its_source():
    with pytest.raises(ScenarioError, match=r"^inline: "):
        parse("name: [", "inline")


# --- the docs stay complete ----------------------------------------------------------------

def _models() -> list[type[BaseModel]]:
    return [cls for name, cls in vars(sc).items()
            if inspect.isclass(cls) and issubclass(cls, BaseModel) and cls.__module__ == sc.__name__ and not name.startswith("_")]


def _doc_section(doc: str, model: str) -> str:
    """The part of docs/MODEL.md under the heading that names the model, e.g. (`Volumes`)."""
    match = re.search(rf"^###[^\n]*`{model}`[^\n]*\n(.*?)(?=^#{{1,3}} |\Z)", doc, flags=re.M | re.S)
    return match.group(1) if match else ""


def test_docs_cover_every_model():
    doc = DOCS.read_text()
    assert {m.__name__ for m in _models()} >= {"Scenario", "Volumes", "CustomerBehaviour", "CarrierModel", "WarehouseModel",
                                               "EventFaults", "ApiFault", "Faults", "Slas", "DeliverySettings", "SeedData"}
    for model in _models():
        assert _doc_section(doc, model.__name__), f"docs/MODEL.md has no section for {model.__name__}"


@pytest.mark.parametrize("model", _models(), ids=lambda m: m.__name__)
def test_every_field_has_a_description_or_is_documented(model):
    doc = DOCS.read_text()
    section = _doc_section(doc, model.__name__)
    missing = [name for name, field in model.model_fields.items()
               if not field.description and not re.search(rf"^\| `{name}` \|", section, flags=re.M)]
    assert not missing, f"{model.__name__}: document {missing} in docs/MODEL.md (or give them a description)"


def test_docs_name_every_shipped_scenario():
    doc = DOCS.read_text()
    for name in shipped():
        assert f"### {name}\n" in doc, f"docs/MODEL.md: add a section for the scenario {name}"


def test_defaults_in_docs_match_the_schema():
    # The tables give each default; a changed default must change the docs too.
    doc = DOCS.read_text()
    for model in _models():
        section = _doc_section(doc, model.__name__)
        for name, field in model.model_fields.items():
            row = re.search(rf"^\| `{name}` \| ([^|]*) \|", section, flags=re.M)
            if row is None or not isinstance(field.default, (int, float)) or isinstance(field.default, bool):
                continue
            assert float(row.group(1).strip()) == float(field.default), f"{model.__name__}.{name}: docs say {row.group(1)}"


def test_scenario_defaults_are_valid_on_their_own():
    assert Scenario(name="x").faults.api == []


def test_event_faults_by_type_name_a_known_event_and_do_not_nest():
    ok = Scenario.model_validate({"name": "x", "faults": {"events": {"by_event_type": {"inspection.completed": {"duplicate_rate": 1}}}}})
    assert ok.faults.events.by_event_type["inspection.completed"].duplicate_rate == 1
    with pytest.raises(ValidationError, match="inspection.done"):
        Scenario.model_validate({"name": "x", "faults": {"events": {"by_event_type": {"inspection.done": {}}}}})
    with pytest.raises(ValidationError, match="cannot have its own by_event_type"):
        Scenario.model_validate({"name": "x", "faults": {"events": {"by_event_type": {
            "receipt.completed": {"by_event_type": {"receipt.completed": {}}}}}}})


def test_the_share_of_customers_on_hold_is_a_setting():
    from simulators.world import World

    assert Scenario(name="x").seed_data.on_hold_share == 0.03  # the master data's own default: same worlds as before
    world = World(Scenario.model_validate({"name": "x", "seed_data": {"on_hold_share": 1}}))
    assert {c.account_status.value for c in world.master.customers.values()} == {"on_hold"}
