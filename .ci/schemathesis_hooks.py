"""Rules of Switchboard's API that JSON Schema cannot state, told to schemathesis.

A campaign's `ends_at` must be after its `starts_at`, and its window's `start` and `end` must
differ: each relates two fields, which JSON Schema cannot express (/openapi.json gives a valid pair
as examples, and documents the 422). So:
- the fuzzing phase does not generate such a body as a valid one (`filter_body`);
- the coverage phase ignores that hook and sends equal placeholder values: a 422 that names only
  these rules, for a body that breaks them (or a patch that does with the stored settings), is not
  the contract's fault, and is dropped (`filter_failure`; the run's summary counts what it drops).
Nothing else is filtered.
"""
import json

import schemathesis

CAMPAIGN_PATHS = ("/v1/campaigns", "/v1/campaigns/{id}")
CROSS_FIELD = {
    ("ends_at", "must be after starts_at"),
    ("window", "start and end must be different HH:MM times"),
}


def _breaks_a_cross_field_rule(body):
    if not isinstance(body, dict):
        return False
    starts, ends = body.get("starts_at"), body.get("ends_at")
    # RFC 3339 in UTC with a `Z`, as generated: text order is time order.
    if isinstance(starts, str) and isinstance(ends, str) and ends <= starts:
        return True
    window = body.get("window")
    return isinstance(window, dict) and "start" in window and window.get("start") == window.get("end")


@schemathesis.hook
def filter_body(context, body):
    operation = context.operation
    if operation is not None and operation.path in CAMPAIGN_PATHS:
        return not _breaks_a_cross_field_rule(body)
    return True


@schemathesis.hook
def filter_failure(context, failure, case, response):
    if case.operation.path not in CAMPAIGN_PATHS or response.status_code != 422:
        return True
    try:
        errors = json.loads(response.content).get("errors") or []
    except (ValueError, AttributeError):
        return True
    only_cross_field = bool(errors) and all((e.get("field"), e.get("message")) in CROSS_FIELD for e in errors)
    explained = _breaks_a_cross_field_rule(case.body) or case.operation.method.upper() == "PATCH"
    return not (only_cross_field and explained)
