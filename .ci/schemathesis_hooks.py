"""Rules of Switchboard's API that JSON Schema cannot state, told to schemathesis.

A campaign's `ends_at` must be after its `starts_at`, and its window's `start` and `end` must
differ: each relates two fields, which JSON Schema cannot express (/openapi.json gives a valid pair
as examples, and documents the 422). So:
- the fuzzing phase does not generate such a body as a valid one (`filter_body`);
- the coverage phase ignores that hook and sends equal placeholder values: a 422 that names only
  these rules, for a body that breaks them (or a patch that does with the stored settings), is not
  the contract's fault, and is dropped (`filter_failure`; the run's summary counts what it drops).
An API key's `expires_at` must be in the future: a rule against the clock, which JSON Schema
cannot state either. The fuzzing phase does not send a past expiry as valid, and a 422 naming only
that rule, for a body that breaks it, is dropped.
Nothing else is filtered.
"""
import json
from datetime import datetime, timezone

import schemathesis

CAMPAIGN_PATHS = ("/v1/campaigns", "/v1/campaigns/{id}")
CROSS_FIELD = {
    ("ends_at", "must be after starts_at"),
    ("window", "start and end must be different HH:MM times"),
}
KEY_PATHS = ("/v1/api-keys", "/v1/admin/users/{id}/api-keys")
KEY_RULE = ("expires_at", "must be in the future")


def _expires_in_the_past(body):
    if not isinstance(body, dict) or not isinstance(body.get("expires_at"), str):
        return False
    try:
        at = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    except ValueError:
        return False
    return at.tzinfo is not None and at <= datetime.now(timezone.utc)


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
    if operation is not None and operation.path in KEY_PATHS:
        return not _expires_in_the_past(body)
    return True


@schemathesis.hook
def filter_failure(context, failure, case, response):
    if response.status_code != 422:
        return True
    try:
        errors = json.loads(response.content).get("errors") or []
    except (ValueError, AttributeError):
        return True
    if case.operation.path in KEY_PATHS:
        only_key_rule = bool(errors) and all((e.get("field"), e.get("message")) == KEY_RULE for e in errors)
        return not (only_key_rule and _expires_in_the_past(case.body))
    if case.operation.path not in CAMPAIGN_PATHS:
        return True
    only_cross_field = bool(errors) and all((e.get("field"), e.get("message")) in CROSS_FIELD for e in errors)
    explained = _breaks_a_cross_field_rule(case.body) or case.operation.method.upper() == "PATCH"
    return not (only_cross_field and explained)
