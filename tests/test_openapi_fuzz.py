"""Schemathesis against each fake's own OpenAPI: no 500s, every response matches its schema.

A bounded number of generated examples per operation keeps this part of the normal suite.
The admin API is left out: resetting state or adding faults mid-fuzz proves nothing.
"""

from __future__ import annotations

import importlib

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.conftest import api_client

SYSTEMS = ["carrier", "erp", "wms", "returns_portal"]
MAX_EXAMPLES = 25


def _app(system: str):
    try:
        module = importlib.import_module(f"simulators.{system}.app")
    except ModuleNotFoundError:
        return None
    return module.create_app(seed=3)


def _schemas():
    for system in SYSTEMS:
        app = _app(system)
        if app is None:
            continue
        schema = schemathesis.openapi.from_asgi("/openapi.json", app).exclude(path_regex="^/(__admin|healthz)")
        yield system, app, schema


_LOADED = list(_schemas())


def _fuzz(system, app, schema):
    headers = dict(api_client(app).headers)
    auth = {"Authorization": headers["authorization"]}

    @schema.parametrize()
    @settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
    def test(case):
        # Business rules (an unknown site, more units than were ordered) rightly answer 422 to
        # schema-valid data, so the "positive data accepted" check does not apply to these APIs.
        case.call_and_validate(headers=auth, excluded_checks=[schemathesis.checks.positive_data_acceptance])

    return test


for _system, _app_obj, _schema in _LOADED:
    globals()[f"test_{_system}_openapi_holds"] = _fuzz(_system, _app_obj, _schema)
