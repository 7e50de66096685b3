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
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.config import SchemathesisConfig
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


schema = schemathesis.pytest.from_fixture("api_schema")
# The dry run takes a raw .eml (message/rfc822): send whatever bytes were generated.
schemathesis.serializer.alias("message/rfc822", "application/octet-stream")


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case: Any, api_schema: Any) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {api_schema.test_key}"}, checks=CHECKS)
