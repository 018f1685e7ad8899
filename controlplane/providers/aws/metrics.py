"""AWS call counts and throttles as Prometheus metrics, through botocore's event hooks.

:meth:`AwsClients.client <controlplane.providers.aws.credentials.AwsClients.client>` attaches
:func:`instrument` to every client it builds, so every AWS call Lakeplane makes is counted:

* ``lakeplane_aws_calls_total{service,operation,outcome}``: one per API call (after botocore's
  retries), outcome ``ok``, ``throttled``, ``access_denied``, ``client_error``, ``server_error``
  or ``unreachable`` (no answer at all);
* ``lakeplane_aws_throttles_total{service,operation}``: one per throttled attempt, retried or
  not, so a burst that botocore rode out still shows.
"""

from __future__ import annotations

from typing import Any, Final

from prometheus_client import Counter

# botocore's own list of throttling error codes (botocore.retries.standard), and what EC2 says.
THROTTLING_CODES: Final = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    }
)

AWS_CALLS: Final = Counter(
    "lakeplane_aws_calls",
    "AWS API calls (after botocore's retries) by service, operation and outcome.",
    ["service", "operation", "outcome"],
)
AWS_THROTTLES: Final = Counter(
    "lakeplane_aws_throttles",
    "Throttled AWS API attempts (each retry counts) by service and operation.",
    ["service", "operation"],
)


def _error_code(parsed: Any) -> str:
    if isinstance(parsed, dict):
        error = parsed.get("Error")
        if isinstance(error, dict):
            return str(error.get("Code", ""))
    return ""


def outcome_of(status_code: int, parsed: Any) -> str:
    code = _error_code(parsed)
    if code in THROTTLING_CODES or status_code == 429:
        return "throttled"
    if status_code < 300 and not code:
        return "ok"
    from controlplane.providers.aws.credentials import ACCESS_DENIED_CODES

    if code in ACCESS_DENIED_CODES:
        return "access_denied"
    return "server_error" if status_code >= 500 else "client_error"


class _Hooks:
    def __init__(self, service: str) -> None:
        self.service = service

    def after_call(self, http_response: Any, parsed: Any, model: Any, **_: Any) -> None:
        status = int(getattr(http_response, "status_code", 0) or 0)
        AWS_CALLS.labels(self.service, model.name, outcome_of(status, parsed)).inc()

    def after_call_error(self, event_name: str = "", **_: Any) -> None:
        # after-call-error.<service id>.<Operation>: the event names the operation.
        operation = event_name.rsplit(".", 1)[-1] or "unknown"
        AWS_CALLS.labels(self.service, operation, "unreachable").inc()

    def needs_retry(self, response: Any = None, operation: Any = None, **_: Any) -> None:
        # (http response, parsed) of each attempt; None when the attempt raised instead.
        if response is None or operation is None:
            return
        http_response, parsed = response
        status = int(getattr(http_response, "status_code", 0) or 0)
        if _error_code(parsed) in THROTTLING_CODES or status == 429:
            AWS_THROTTLES.labels(self.service, operation.name).inc()


def instrument(client: Any) -> Any:
    """Count ``client``'s calls and throttled attempts; returns the client."""
    model = client.meta.service_model
    hooks = _Hooks(model.service_name)
    # botocore names events by the hyphenized service id ("elastic-load-balancing-v2").
    service_id = model.service_id.hyphenize()
    events = client.meta.events
    events.register(f"after-call.{service_id}", hooks.after_call)
    events.register(f"after-call-error.{service_id}", hooks.after_call_error)
    events.register(f"needs-retry.{service_id}", hooks.needs_retry)
    return client
