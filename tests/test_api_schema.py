"""schemathesis against the OpenAPI document: no 5xx, no response breaking the documented schema.

Kept short (few examples per operation) so that CI stays fast; the endpoint tests cover behaviour.
"""

from __future__ import annotations

import asyncio
import shutil
from typing import Any

import pytest
import schemathesis
from conftest import _truncate_all, make_settings
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.config import SchemathesisConfig
from schemathesis.core.failures import Failure, FailureGroup
from sqlalchemy.pool import NullPool

from mailtickets.api import create_app
from mailtickets.api.keys import create_api_key
from mailtickets.clock import ManualClock
from mailtickets.db import create_engine, session_factory
from mailtickets.models import Client, ClientDomain, Contact

MAX_EXAMPLES = 5
# The coverage phase sends hundreds of boundary cases per operation; the endpoint tests cover those.
CONFIG = SchemathesisConfig.from_dict({"phases": {"coverage": {"enabled": False}}})
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


async def _seed(sessions: Any) -> str:
    async with sessions() as session, session.begin():
        client = Client(name="Acme", domains=[ClientDomain(domain="acme.example")])
        session.add(client)
        await session.flush()
        session.add(Contact(name="Sally", email="sally@acme.example", client_id=client.id, external_id="ext-1"))
        return (await create_api_key(session, "schemathesis"))[1]


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def api_schema(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Any:
    directory = tmp_path_factory.mktemp("schemathesis")
    if request.param == "sqlite":
        shutil.copy(request.getfixturevalue("sqlite_template"), directory / "api.db")
        url = f"sqlite+aiosqlite:///{directory / 'api.db'}"
    else:
        url = request.getfixturevalue("postgres_database")
        asyncio.run(_truncate_all(create_engine(url, poolclass=NullPool)))
    # NullPool: the ASGI test client runs the app on its own event loop; pooled connections would
    # outlive the loop that opened them.
    engine = create_engine(url, poolclass=NullPool)
    sessions = session_factory(engine)
    key = asyncio.run(_seed(sessions))
    app = create_app(make_settings(directory / "data", url), sessions, ManualClock())
    bearer = {"Authorization": f"Bearer {key}"}  # the document, like the API, needs a key
    loaded = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app, config=CONFIG, headers=bearer)
    loaded.test_key = key  # type: ignore[attr-defined]
    return loaded


# The dry run takes a raw .eml (message/rfc822): send whatever bytes were generated.
schemathesis.serializer.alias("message/rfc822", "application/octet-stream")


def _check_operation(operation: Any, key: str) -> None:
    @given(case=operation.as_strategy())
    @settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def conforms(case: Any) -> None:
        case.call_and_validate(headers={"Authorization": f"Bearer {key}"}, checks=CHECKS)

    conforms()


# Each operation is driven through Hypothesis directly rather than by schemathesis' pytest plugin: the
# plugin's lazy fixture mode renames pytest's nodes through a private attribute that pytest 9.2 removed.
def test_api_conforms_to_its_schema(api_schema: Any) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) > 20, "the OpenAPI document lists the API's operations"
    failures: list[str] = []
    for operation in operations:
        try:
            _check_operation(operation, api_schema.test_key)
        except (Failure, FailureGroup) as failure:
            failures.append(f"{operation.method.upper()} {operation.path}: {failure}")
    assert not failures, "\n\n".join(failures)
