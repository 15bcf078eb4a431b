"""Property-based fuzzing of the live server from its own published OpenAPI schema (schemathesis + hypothesis).

Every operation gets a bounded number of schema-valid and schema-violating requests. Whatever comes in, the server
must answer within a timeout, never with a 5xx, always in the documented shape (the structured error body for
errors), and stay healthy.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from backend.server_process import start_server
from backend.settings import AUDIO_CONTENT_TYPES

EXAMPLES_PER_OPERATION = 12
REQUEST_TIMEOUT_S = 20


for _media_type in AUDIO_CONTENT_TYPES:  # uploads are raw bytes, like application/octet-stream
    schemathesis.serializer.alias(_media_type, "application/octet-stream")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, shared_data: Path):
    live = start_server(tmp_path_factory.mktemp("fuzz"), "--root", str(shared_data / "cmu_mocap_subject131_bvh"),
                        "--max-upload-mb", "1", "--max-json-mb", "2")  # fmt: skip
    yield live
    live.stop()


@pytest.fixture(scope="module")
def schema(server):
    auth = {"Authorization": f"Bearer {server.token}"}
    loaded = schemathesis.openapi.from_url(server.url + "/openapi.json", headers=auth)
    return loaded


def _operations(schema) -> list:
    return [result.ok() for result in schema.get_all_operations()]


def test_schema_is_published_and_complete(schema):
    labels = {op.label for op in _operations(schema)}
    for expected in ("POST /jobs/conduct", "POST /jobs/retarget", "POST /jobs/search", "GET /jobs/{job_id}",
                     "POST /jobs/{job_id}/cancel", "GET /jobs/{job_id}/result", "GET /capabilities",
                     "POST /uploads/audio", "POST /models/release", "GET /health"):  # fmt: skip
        assert expected in labels


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_5xx_and_no_hang_on_any_operation(server, schema, mode):
    auth = {"Authorization": f"Bearer {server.token}"}
    session = requests.Session()
    failures: list[str] = []
    for operation in _operations(schema):

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        def run(case):
            checks = [not_a_server_error]
            if mode is GenerationMode.POSITIVE:
                checks += [status_code_conformance, response_schema_conformance]
            case.call_and_validate(base_url=server.url, session=session, headers=auth, checks=checks,
                                   timeout=REQUEST_TIMEOUT_S)  # fmt: skip

        try:
            run()
        except Unsatisfiable:  # an operation without inputs has no schema-violating requests
            assert mode is GenerationMode.NEGATIVE, operation.label
        except Exception as exc:  # collect every operation's first failure, then report them together
            failures.append(f"{operation.label}: {type(exc).__name__}: {str(exc)[:1500]}")
    assert not failures, "\n\n".join(failures)
    assert requests.get(server.url + "/health", timeout=5).json()["status"] == "ok"
    assert server.process.poll() is None
