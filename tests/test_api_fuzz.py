"""The API against its own OpenAPI document, fuzzed by schemathesis as an admin and as a salesperson:
no server error, no answer that the document does not describe, no operation that ignores the login.

Bounded and repeatable: a fixed seed (derandomize) and a fixed number of examples per operation, so
it finishes in about a minute per database. Schemathesis' "a schema-valid request must be accepted"
check is left out: the document cannot say everything the value rules check (a CAS number's check
digit, a unique code), and those requests are rightly refused with 422.
"""
from __future__ import annotations

import collections
from typing import Any

import pytest

from app.seed import DEMO_PASSWORD, load_demo_data
from conftest import ADMIN_PASSWORD, Api, database_kind

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from schemathesis.specs.openapi.checks import positive_data_acceptance  # noqa: E402

# On SQLite the most examples; on the servers fewer, for what only they refuse (NUL bytes, ranges).
EXAMPLES = 25 if database_kind() == "sqlite" else 5


def fuzz(app: Any, api: Api) -> dict[tuple[str, str, str], int]:
    """Run every operation of the document EXAMPLES times; return (method, path, failure) -> count."""
    schema = schemathesis.openapi.from_wsgi("/api/v1/_openapi", app, headers=Api(app, "admin", ADMIN_PASSWORD).headers)
    failures: dict[tuple[str, str, str], int] = collections.Counter()
    for result in schema.get_all_operations():
        fuzz_operation(result.ok(), api, failures)
    return failures


def fuzz_operation(operation: Any, api: Api, failures: dict[tuple[str, str, str], int]) -> None:
    """Run one operation EXAMPLES times, counting each failure into failures."""

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
    @given(case=operation.as_strategy())
    def run(case: Any) -> None:
        try:
            case.call_and_validate(headers=api.headers, excluded_checks=[positive_data_acceptance])
        except (AssertionError, BaseExceptionGroup) as error:
            first = str(error).strip().splitlines()
            failures[(operation.method.upper(), operation.path, first[2] if len(first) > 2 else str(error))] += 1

    run()


@pytest.fixture
def demo(make_app: Any) -> Any:
    app = make_app()
    load_demo_data(app, scale=0.02)
    return app


def test_the_api_holds_up_to_fuzzing_as_an_admin(demo: Any) -> None:
    failures = fuzz(demo, Api(demo))
    assert not failures, "\n".join(f"{n}× {m} {p}: {what}" for (m, p, what), n in sorted(failures.items()))


def test_the_api_holds_up_to_fuzzing_as_a_salesperson(demo: Any) -> None:
    failures = fuzz(demo, Api(demo, "zhangwei", DEMO_PASSWORD))
    assert not failures, "\n".join(f"{n}× {m} {p}: {what}" for (m, p, what), n in sorted(failures.items()))
