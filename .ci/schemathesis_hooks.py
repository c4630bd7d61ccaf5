"""Rules of Switchboard's API that JSON Schema cannot state (they relate two fields), told to
schemathesis so that it does not send, as a valid request, one the API rightly refuses with 422.
/openapi.json states them in the operations' descriptions."""
import schemathesis


def _campaign_is_consistent(body):
    if not isinstance(body, dict):
        return True
    starts, ends = body.get("starts_at"), body.get("ends_at")
    if isinstance(starts, str) and isinstance(ends, str) and ends <= starts:
        return False  # ends_at must be after starts_at (both are RFC 3339 UTC, so text order is time order)
    window = body.get("window")
    if isinstance(window, dict) and window.get("start") == window.get("end"):
        return False  # a window's start and end must differ
    return True


@schemathesis.hook
def filter_body(context, body):
    operation = context.operation
    if operation is not None and operation.path in ("/v1/campaigns", "/v1/campaigns/{id}"):
        return _campaign_is_consistent(body)
    return True
