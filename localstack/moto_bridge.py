#!/usr/bin/env python3
"""moto server whose no-Docker Lambda `invoke` runs the real function binaries.

moto's Lambda backend without Docker only echoes. This launcher replaces its `invoke` with a POST
to a Lambda Invoke API endpoint (the deskshift-lambda-bridge, or `cargo lambda watch`), so Step
Functions executions in moto run the real handlers; a function error becomes
`x-amz-function-error`, so Retry/Catch in the state machine match the handler's errorType.
DynamoDB requests are serialised as in `moto_atomic.py` (single-item writes atomic, as in DynamoDB).

    DESKSHIFT_INVOKE_ENDPOINT=http://127.0.0.1:9001 MOTO_PORT=5000 \
        python3 localstack/moto_bridge.py -H 127.0.0.1 -p 5000

Enable execution once started:
    curl -X POST localhost:5000/moto-api/config \
         -d '{"stepfunctions":{"execute_state_machine":true},"lambda":{"use_docker":false}}'
"""

import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request

from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.server import main

import moto_atomic  # noqa: F401  (serialises moto's DynamoDB handler on import)


def _endpoint() -> str:
    url = os.environ.get("DESKSHIFT_INVOKE_ENDPOINT", "").rstrip("/")
    if not url:
        raise RuntimeError(
            "DESKSHIFT_INVOKE_ENDPOINT is not set: start the Lambda bridge and export its URL"
        )
    return url


def _function_name(name: str) -> str:
    if ":function:" in name:
        name = name.split(":function:", 1)[1]
    return name.split(":", 1)[0]


def invoke(self, function_name, qualifier, body, headers, response_headers):
    name = _function_name(function_name)
    data = body if isinstance(body, bytes) else (body or "{}").encode()
    url = f"{_endpoint()}/2015-03-31/functions/{urllib.parse.quote(name, safe='')}/invocations"
    request = urllib.request.Request(
        url, data=data, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=None) as response:
            payload = response.read()
            error = response.headers.get("X-Amz-Function-Error")
    except urllib.error.HTTPError as e:
        # `cargo lambda watch` answers a handler error with HTTP 500 {errorType, errorMessage}.
        payload = e.read()
        error = "Unhandled"
        try:
            json.loads(payload)["errorType"]
        except Exception:
            payload = json.dumps(
                {"errorType": "Bridge.HttpError", "errorMessage": f"HTTP {e.code} from {url}"}
            ).encode()
    if error:
        response_headers["x-amz-function-error"] = error
    response_headers["Content-Length"] = str(len(payload))
    return payload


LambdaSimpleBackend.invoke = invoke

if __name__ == "__main__":
    main(sys.argv[1:])
