"""A refused API request is logged with the server's own message: a 403 names the verb and
resource the operator lacks, which is how a too-narrow RBAC shows itself."""

from __future__ import annotations

import json

from kubernetes.client.exceptions import ApiException

from deepseek_operator.handlers import _short


def test_an_api_error_keeps_the_servers_message() -> None:
    error = ApiException(status=403, reason="Forbidden")
    error.body = json.dumps(
        {"kind": "Status", "message": 'services "r1" is forbidden: cannot create resource'}
    )
    assert _short(error) == (
        'HTTP 403 Forbidden: services "r1" is forbidden: cannot create resource'
    )


def test_an_api_error_without_a_readable_body_is_its_status() -> None:
    for body in (None, "", "<html>gateway</html>", "[1]"):
        error = ApiException(status=502, reason="Bad Gateway")
        error.body = body
        assert _short(error) == "HTTP 502 Bad Gateway"


def test_other_errors_are_their_type_and_text() -> None:
    assert _short(TimeoutError("read timed out")) == "TimeoutError: read timed out"
