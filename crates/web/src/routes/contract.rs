//! The exact contract: `/openapi.json` as served, and the 405 answer for a method a known path does
//! not offer (its `Allow` header comes from the same document, so the two cannot disagree).
//!
//! The handlers' annotations ([`super::docs::ApiDoc`]) say what each operation returns when it
//! works; the rules here add what every operation of a kind can also answer, so no operation can
//! forget one: 401 with credentials, 400/413/415/422 with a JSON body, 404/422 with a path
//! parameter, 400/422 with query parameters, 503 when the database is unreachable — each with the
//! problem+json schema. Constraints the annotation language cannot say (patterns, bounds, enums,
//! required fields of a create that shares its schema with a patch) are laid over the generated
//! schemas here, next to the validators they describe.

use std::sync::OnceLock;

use actix_web::http::{header, StatusCode};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{json, Value};
use utoipa::OpenApi;

use crate::problem::ApiError;

/// White space as Rust's `str::trim` removes it (Unicode `White_Space`), for patterns.
const WHITE_SPACE: &str = "\\t-\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";

/// The served document (built once).
pub fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let mut document = serde_json::to_value(super::docs::ApiDoc::openapi()).unwrap_or_default();
        constrain_schemas(&mut document);
        constrain_parameters(&mut document);
        no_nul_in_free_text_parameters(&mut document);
        add_common_responses(&mut document);
        document
    })
}

/// The methods the document offers on `path`, when `path` is one of its paths.
pub fn allowed_methods(path: &str) -> Option<Vec<String>> {
    let paths = document().get("paths")?.as_object()?;
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    paths.iter().find_map(|(template, item)| {
        let parts: Vec<&str> = template.split('/').collect();
        let matches = parts.len() == segments.len()
            && parts.iter().zip(&segments).all(|(part, segment)| {
                (part.starts_with('{') && part.ends_with('}') && !segment.is_empty()) || part == segment
            });
        matches.then(|| item.as_object().map(|ops| ops.keys().map(|m| m.to_ascii_uppercase()).collect()))?
    })
}

/// The app's fallback: 405 with `Allow` for a known path, else 404.
pub async fn fallback(request: HttpRequest) -> Result<HttpResponse, ApiError> {
    match allowed_methods(request.path()) {
        Some(methods) => {
            let allow = methods.join(", ");
            let detail = format!("{} is not offered on this path; it offers {allow}", request.method());
            Err(ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", detail)
                .with_header(header::ALLOW, allow))
        }
        None => Err(ApiError::not_found("no such route")),
    }
}

fn phone_pattern() -> String {
    // As call_service::PhoneNumber::parse reads a number: trimmed, `+`, 7 to 15 digits (the first
    // not 0) with spaces, dashes, dots or parentheses anywhere after the `+`.
    format!("^[{WHITE_SPACE}]*\\+[ .()-]*[1-9](?:[ .()-]*[0-9]){{6,14}}[ .()-]*[{WHITE_SPACE}]*$")
}

fn name_pattern() -> String {
    // 1 to 200 characters (maxLength), not all white space, no NUL.
    format!("^[^\\u0000]*[^\\u0000{WHITE_SPACE}][^\\u0000]*$")
}

fn uuid_text() -> Value {
    // Bolna's ids are uuids in their usual form; surrounding white space is trimmed.
    json!({"type": "string", "format": "uuid"})
}

fn set(document: &mut Value, pointer: &str, value: Value) {
    if let Some(slot) = document.pointer_mut(pointer) {
        *slot = value;
    }
}

/// Replaces the schema of parameter `name` of operation `method path`.
fn set_parameter(document: &mut Value, path: &str, method: &str, name: &str, schema: Value) {
    let pointer = format!("/paths/{}/{method}/parameters", path.replace('~', "~0").replace('/', "~1"));
    let Some(Value::Array(parameters)) = document.pointer_mut(&pointer) else { return };
    for parameter in parameters.iter_mut().filter(|p| p["name"] == name) {
        parameter["schema"] = schema.clone();
    }
}

fn page(size: crate::extract::PageSize) -> Value {
    json!({"type": "integer", "minimum": 1, "maximum": size.max, "default": size.default})
}

/// Query and header parameters, as the handlers read them.
fn constrain_parameters(document: &mut Value) {
    use super::{admin, calls, campaigns};
    let pages = [
        ("/v1/calls", calls::PAGE),
        ("/v1/campaigns", campaigns::CAMPAIGN_PAGE),
        ("/v1/campaigns/{id}/contacts", campaigns::CONTACT_PAGE),
        ("/v1/dnc", campaigns::DNC_PAGE),
        ("/v1/admin/users", admin::USER_PAGE),
        ("/v1/admin/active-calls", admin::ACTIVE_CALL_PAGE),
        ("/v1/admin/campaigns", admin::CAMPAIGN_PAGE),
        ("/v1/admin/audit-log", admin::AUDIT_PAGE),
        ("/v1/webhook-endpoints/{id}/deliveries", super::webhook_endpoints::DELIVERY_PAGE),
    ];
    for (path, size) in pages {
        set_parameter(document, path, "get", "limit", page(size));
    }
    let statuses: Vec<&str> =
        call_service::calls::CallStatus::all().map(call_service::calls::CallStatus::as_str).collect();
    set_parameter(document, "/v1/calls", "get", "status", json!({"type": "string", "enum": statuses}));
    set_parameter(
        document,
        "/v1/calls",
        "get",
        "call_type",
        json!({"type": "string", "enum": ["direct", "campaign"]}),
    );
    // What CallCursor::encode writes.
    let cursor = "^[0-9]{1,18}\\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$";
    set_parameter(document, "/v1/calls", "get", "cursor", json!({"type": "string", "pattern": cursor}));
    let audit_cursor = json!({"type": "integer", "minimum": 1, "maximum": i64::MAX});
    set_parameter(document, "/v1/admin/audit-log", "get", "cursor", audit_cursor);
    // The do-not-call list's cursor is the last number of the previous page, as it was given.
    set_parameter(document, "/v1/dnc", "get", "cursor", json!({"type": "string"}));
    for path in ["/v1/campaigns", "/v1/campaigns/{id}/contacts"] {
        set_parameter(document, path, "get", "cursor", json!({"type": "string", "format": "uuid"}));
    }
    let contact_statuses = call_service::campaigns::ContactStatus::NAMES;
    set_parameter(
        document,
        "/v1/campaigns/{id}/contacts",
        "get",
        "status",
        json!({"type": "string", "enum": contact_statuses}),
    );
    set_parameter(
        document,
        "/v1/campaigns/{id}/{action}",
        "post",
        "action",
        json!({"type": "string", "enum": ["start", "pause", "resume", "cancel"]}),
    );
    set_parameter(
        document,
        "/v1/dnc/{phone_number}",
        "delete",
        "phone_number",
        json!({"type": "string", "pattern": phone_pattern()}),
    );
    set_parameter(
        document,
        "/v1/calls",
        "post",
        "Idempotency-Key",
        json!({"type": "string", "pattern": "^[!-~]{1,255}$"}),
    );
    let formats = json!({"type": "string", "enum": ["csv", "jsonl"]});
    for path in ["/v1/campaigns/{id}/results.csv", "/v1/calls/export"] {
        set_parameter(document, path, "get", "format", formats.clone());
    }
    let groupings = |all: &[call_service::results::UsageGrouping]| json!({"type": "string", "enum": all.iter().map(|g| g.as_str()).collect::<Vec<_>>()});
    set_parameter(document, "/v1/usage", "get", "group_by", groupings(&super::results::USER_GROUPINGS));
    set_parameter(
        document,
        "/v1/admin/usage",
        "get",
        "group_by",
        groupings(&super::results::ADMIN_GROUPINGS),
    );
    let deliveries = "/v1/webhook-endpoints/{id}/deliveries";
    let delivery_statuses: Vec<&str> =
        call_service::outbound_webhooks::DeliveryStatus::ALL.iter().map(|s| s.as_str()).collect();
    set_parameter(
        document,
        deliveries,
        "get",
        "status",
        json!({"type": "string", "enum": delivery_statuses}),
    );
    set_parameter(
        document,
        deliveries,
        "get",
        "cursor",
        json!({"type": "integer", "minimum": 1, "maximum": i64::MAX}),
    );
    set_parameter(
        document,
        "/v1/webhook-endpoints/{id}/deliveries/{delivery_id}/retry",
        "post",
        "delivery_id",
        json!({"type": "integer", "minimum": 1, "maximum": i64::MAX}),
    );
    // Empty: none (a client may send the header empty).
    let event_id = json!({"type": "string", "pattern": "^([1-9][0-9]{0,17})?$"});
    set_parameter(document, "/v1/events", "get", "Last-Event-ID", event_id.clone());
    set_parameter(document, "/v1/events", "get", "last_event_id", event_id);
}

/// No URL may carry a NUL character (`startup::refuse_nul_in_url`): every free-text parameter says so.
fn no_nul_in_free_text_parameters(document: &mut Value) {
    let Some(Value::Object(paths)) = document.get_mut("paths") else { return };
    for operation in paths.values_mut().filter_map(Value::as_object_mut).flat_map(|ops| ops.values_mut()) {
        let Some(Value::Array(parameters)) = operation.get_mut("parameters") else { continue };
        for schema in
            parameters.iter_mut().filter_map(|p| p.get_mut("schema")).filter_map(Value::as_object_mut)
        {
            let text = schema
                .get("type")
                .is_some_and(|t| t == "string" || t.as_array().is_some_and(|a| a.contains(&json!("string"))));
            let constrained = ["pattern", "enum", "format"].iter().any(|key| schema.contains_key(*key));
            if text && !constrained {
                schema.insert("pattern".into(), json!("^[^\\u0000]*$"));
            }
        }
    }
}

fn nullable(schema: Value) -> Value {
    json!({"oneOf": [schema, {"type": "null"}]})
}

/// Patterns, bounds, enums and required fields, as the validators apply them.
fn constrain_schemas(document: &mut Value) {
    let phone = json!({"type": "string", "pattern": phone_pattern()});
    let name = json!({"type": "string", "minLength": 1, "maxLength": 200, "pattern": name_pattern()});
    let schemas = "/components/schemas";
    let call_statuses: Vec<&str> =
        call_service::calls::CallStatus::all().map(call_service::calls::CallStatus::as_str).collect();
    let terminal: Vec<&str> = call_service::calls::CallStatus::all()
        .filter(|s| s.is_terminal())
        .map(call_service::calls::CallStatus::as_str)
        .chain(["voicemail"])
        .collect();
    // Free-form objects: any JSON (NUL characters inside are removed, see crate::extract), keys
    // starting with `switchboard_` are Switchboard's own.
    let free_form = json!({"type": "object", "propertyNames": {"not": {"pattern": "^switchboard_"}}});

    let call = format!("{schemas}/CreateCallRequest/properties");
    set(document, &format!("{call}/agent_id"), uuid_text());
    set(document, &format!("{call}/recipient_phone_number"), phone.clone());
    set(document, &format!("{call}/from_phone_number"), nullable(phone.clone()));
    set(document, &format!("{call}/user_data"), nullable(free_form.clone()));
    set(
        document,
        &format!("{call}/call_type"),
        nullable(json!({"type": "string", "enum": ["direct", "campaign"]})),
    );
    set(
        document,
        &format!("{call}/scheduled_at"),
        nullable(json!({"type": "string", "format": "date-time", "example": "2030-01-01T09:00:00+05:30"})),
    );

    let resource = format!("{schemas}/CallResource/properties/status");
    if let Some(Value::Object(status)) = document.pointer_mut(&resource) {
        status.insert("enum".into(), json!(call_statuses));
    }

    let campaign = format!("{schemas}/CampaignInput/properties");
    set(document, &format!("{campaign}/name"), nullable(name.clone()));
    set(document, &format!("{campaign}/agent_id"), nullable(uuid_text()));
    set(
        document,
        &format!("{campaign}/from_phone_numbers"),
        nullable(json!({"type": "array", "items": phone})),
    );
    set(
        document,
        &format!("{campaign}/timezone"),
        nullable(
            json!({"type": "string", "enum": chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name()).collect::<Vec<_>>()}),
        ),
    );
    set(
        document,
        &format!("{campaign}/max_concurrency"),
        nullable(json!({"type": "integer", "minimum": 1, "maximum": 10_000})),
    );
    set(
        document,
        &format!("{campaign}/calls_per_minute"),
        nullable(json!({"type": "integer", "minimum": 1, "maximum": 100_000})),
    );
    let window = format!("{schemas}/WindowInput/properties");
    set(
        document,
        &format!("{window}/days"),
        json!({"type": "array", "minItems": 1, "items": {"type": "string", "enum": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]}}),
    );
    // Start and end must differ (end before start crosses midnight); ends_at must be after
    // starts_at. JSON Schema cannot relate two fields: the examples show a valid pair, and the
    // operation's 422 says so.
    let clock = |example: &str| json!({"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$", "example": example});
    set(document, &format!("{window}/start"), clock("09:00"));
    set(document, &format!("{window}/end"), clock("17:00"));
    let instant =
        |example: &str| nullable(json!({"type": "string", "format": "date-time", "example": example}));
    set(document, &format!("{campaign}/starts_at"), instant("2030-01-01T09:00:00Z"));
    set(document, &format!("{campaign}/ends_at"), instant("2030-03-01T17:00:00Z"));
    let retry = format!("{schemas}/RetryInput/properties");
    set(
        document,
        &format!("{retry}/on"),
        json!({"type": "array", "items": {"type": "string", "enum": terminal}}),
    );
    set(
        document,
        &format!("{retry}/delay_seconds"),
        json!({"type": "integer", "minimum": 0, "maximum": 2_592_000}),
    );
    set(document, &format!("{retry}/max_attempts"), json!({"type": "integer", "minimum": 1, "maximum": 100}));

    let contact = format!("{schemas}/ContactInput/properties");
    // A contact's `switchboard_` variables reject its row (reported in `rejected`), not the request.
    set(document, &format!("{contact}/variables"), nullable(json!({"type": "object"})));
    if let Some(Value::Array(required)) = document.pointer_mut(&format!("{schemas}/ContactInput/required")) {
        required.retain(|field| field != "variables");
    }
    set(
        document,
        &format!("{schemas}/DncInput/properties/phone_numbers"),
        json!({"type": "array", "minItems": 1, "items": {"type": "string", "pattern": phone_pattern()}}),
    );

    let user = format!("{schemas}/CreateUserRequest/properties");
    set(document, &format!("{user}/name"), name);
    let call_limit = nullable(json!({"type": "integer", "minimum": 0, "maximum": 10_000}));
    // A budget in Bolna's currency (a user's monthly one, or a campaign's).
    let budget =
        nullable(json!({"type": "number", "minimum": 0, "maximum": super::campaign_input::MAX_BUDGET}));
    for request in ["CreateUserRequest", "UpdateLimitsRequest"] {
        for field in ["direct_call_limit", "campaign_call_limit", "max_calls_per_number_per_day"] {
            set(document, &format!("{schemas}/{request}/properties/{field}"), call_limit.clone());
        }
        set(document, &format!("{schemas}/{request}/properties/monthly_budget"), budget.clone());
    }
    set(document, &format!("{campaign}/budget"), budget);
    set(
        document,
        &format!("{schemas}/CampaignResource/properties/pause_reason"),
        nullable(json!({"type": "string", "enum": ["user", "budget_exhausted"]})),
    );
    let key = format!("{schemas}/CreateApiKeyRequest/properties");
    set(
        document,
        &format!("{key}/name"),
        json!({"type": "string", "minLength": 1, "maxLength": 100, "pattern": name_pattern()}),
    );
    // In the future (a rule against the clock, which JSON Schema cannot state: the example is valid,
    // and the operation's 422 says so).
    set(
        document,
        &format!("{key}/expires_at"),
        nullable(json!({"type": "string", "format": "date-time", "example": "2030-01-01T00:00:00Z"})),
    );
    set(
        document,
        &format!("{schemas}/ReleaseRequest/properties/reason"),
        nullable(json!({"type": "string", "pattern": "^[^\\u0000]*$"})),
    );

    // Outbound webhook endpoints (routes::webhook_endpoints validates them so).
    let event_types = json!({"type": "array", "minItems": 1, "items": {"type": "string", "enum": call_service::outbound_webhooks::EVENT_TYPES}});
    let url = json!({"type": "string", "format": "uri", "maxLength": 2048, "pattern": "^https?://[^\\u0000@/?#]+([/?#][^\\u0000]*)?$",
                     "example": "https://crm.example.com/switchboard"});
    let description = json!({"type": "string", "maxLength": 500, "pattern": "^[^\\u0000]*$"});
    for request in ["CreateWebhookEndpointRequest", "UpdateWebhookEndpointRequest"] {
        let properties = format!("{schemas}/{request}/properties");
        let update = request.starts_with("Update");
        let maybe = |schema: &Value| if update { nullable(schema.clone()) } else { schema.clone() };
        set(document, &format!("{properties}/url"), maybe(&url));
        set(document, &format!("{properties}/events"), maybe(&event_types));
        set(document, &format!("{properties}/description"), nullable(description.clone()));
    }
    set(
        document,
        &format!("{schemas}/ReplayRequest/properties/since"),
        json!({"type": "string", "format": "date-time", "example": "2026-12-01T00:00:00Z"}),
    );
    let delivery_statuses: Vec<&str> =
        call_service::outbound_webhooks::DeliveryStatus::ALL.iter().map(|s| s.as_str()).collect();
    set(
        document,
        &format!("{schemas}/WebhookDelivery/properties/status"),
        json!({"type": "string", "enum": delivery_statuses}),
    );
    set(
        document,
        &format!("{schemas}/WebhookEndpoint/properties/disabled_reason"),
        nullable(json!({"type": "string", "enum": ["user", "gone", "failing"]})),
    );

    // Bolna's webhook: an execution names itself and its status (other fields are optional and
    // kept as sent); a body without them is stored and answered 400.
    // (`id`: not blank, or a number, as bolna_client reads it; both at most 255 characters.)
    let id = json!({"oneOf": [{"type": "string", "maxLength": 255, "pattern": name_pattern()}, {"type": "number"}]});
    let status = json!({"type": "string", "maxLength": 255, "pattern": "^[^\\u0000]*$"});
    set(
        document,
        "/paths/~1webhooks~1bolna/post/requestBody/content/application~1json/schema",
        json!({"type": "object", "required": ["id", "status"],
               "properties": {"id": id, "status": status}, "additionalProperties": true}),
    );

    // A campaign's create needs what its patch may leave out.
    if let Some(Value::Object(operation)) = document.pointer_mut("/paths/~1v1~1campaigns/post") {
        let required = json!({"allOf": [
            {"$ref": "#/components/schemas/CampaignInput"},
            {"type": "object", "required": ["name", "agent_id", "max_concurrency"],
             "properties": {"name": {"type": "string"}, "agent_id": {"type": "string"}, "max_concurrency": {"type": "integer"}}}
        ]});
        operation.insert(
            "requestBody".into(),
            json!({"required": true, "content": {"application/json": {"schema": required}}}),
        );
    }
}

/// Adds what every operation of a kind can answer, and the problem+json schema to every error.
fn add_common_responses(document: &mut Value) {
    let problem = json!({"$ref": "#/components/schemas/Problem"});
    if let Some(Value::Object(schemas)) = document.pointer_mut("/components/schemas") {
        schemas.insert("Problem".into(), problem_schema());
    }
    let Some(Value::Object(paths)) = document.get_mut("paths") else { return };
    for (path, item) in paths.iter_mut() {
        let Some(operations) = item.as_object_mut() else { continue };
        for operation in operations.values_mut() {
            let Some(operation) = operation.as_object_mut() else { continue };
            let secured = operation.get("security").and_then(Value::as_array).is_some_and(|s| !s.is_empty());
            let has_body = operation.contains_key("requestBody");
            let parameters: Vec<&str> = operation
                .get("parameters")
                .and_then(Value::as_array)
                .map(|all| all.iter().filter_map(|p| p.get("in").and_then(Value::as_str)).collect())
                .unwrap_or_default();
            let mut extra: Vec<(&str, &str)> = Vec::new();
            if secured {
                extra.push(("401", "Missing or invalid credentials"));
            }
            let by_api_key = operation
                .get("security")
                .and_then(Value::as_array)
                .is_some_and(|schemes| schemes.iter().any(|scheme| scheme.get("api_key").is_some()));
            if by_api_key {
                extra.push((
                    "429",
                    "Over the API key's request limit (http.rate_limit): `Retry-After`, `RateLimit` and `RateLimit-Policy` say when to retry",
                ));
            }
            if has_body {
                extra.extend([
                    ("400", "Malformed JSON"),
                    ("413", "Body too large"),
                    ("415", "Not application/json"),
                    (
                        "422",
                        "Invalid fields (`errors` lists them; `field` names one holding a NUL character)",
                    ),
                ]);
            }
            if parameters.contains(&"path") {
                extra.extend([
                    ("404", "Not found (or another user's)"),
                    ("422", "A malformed path parameter"),
                ]);
            }
            if parameters.contains(&"query") || parameters.contains(&"header") {
                extra.extend([
                    ("400", "A query parameter of the wrong type"),
                    ("422", "An invalid parameter value"),
                ]);
            }
            if path.starts_with("/v1/") {
                extra.push(("503", "The database is unreachable; try again"));
            }
            let responses = operation.entry("responses").or_insert_with(|| json!({}));
            let Some(responses) = responses.as_object_mut() else { continue };
            for (code, description) in extra {
                responses.entry(code).or_insert_with(|| json!({"description": description}));
            }
            if let Some(Value::Object(limited)) = responses.get_mut("429") {
                let text = json!({"schema": {"type": "string"}});
                limited.insert(
                    "headers".into(),
                    json!({"Retry-After": text, "RateLimit": text, "RateLimit-Policy": text}),
                );
            }
            for (code, response) in responses.iter_mut() {
                let error = code.starts_with('4') || code.starts_with('5');
                if let (true, Some(response)) = (error, response.as_object_mut()) {
                    response
                        .insert("content".into(), json!({"application/problem+json": {"schema": problem}}));
                }
            }
        }
    }
}

/// RFC 9457 problem details, as every error is answered.
fn problem_schema() -> Value {
    json!({
        "type": "object",
        "required": ["type", "title", "status", "code", "detail"],
        "properties": {
            "type": {"type": "string", "description": "A URI naming the problem"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "code": {"type": "string", "description": "Stable, machine-readable"},
            "detail": {"type": "string"},
            "errors": {"type": "array", "items": {"type": "object", "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}}}},
            "field": {"type": "string", "description": "The field (a JSON Pointer, or a name) the problem is about"}
        },
        "additionalProperties": true
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Strings from a small alphabet rich in the characters the rules care about.
    fn corpus(alphabet: &[&str], count: usize) -> Vec<String> {
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        (0..count)
            .map(|_| {
                let length = (next() % 22) as usize;
                (0..length).map(|_| alphabet[(next() % alphabet.len() as u64) as usize]).collect()
            })
            .collect()
    }

    #[test]
    fn the_phone_pattern_accepts_exactly_what_phone_number_parse_accepts() {
        let pattern = regex::Regex::new(&phone_pattern()).unwrap();
        let alphabet =
            ["+", "1", "9", "0", "5", " ", "-", ".", "(", ")", "\u{a0}", "\t", "a", "\u{0}", "+", "4"];
        let mut fixed: Vec<String> = [
            "+919812345678",
            " +1 (555) 000.1111 ",
            "+0123456789",
            "+123456",
            "+1234567890123456",
            "+ 91 98",
            "919812345678",
        ]
        .map(String::from)
        .to_vec();
        fixed.extend(corpus(&alphabet, 50_000));
        let digits = ["1", "9", "0", "5", "4", "7", " ", "-", "(", "\u{a0}", "x"];
        fixed.extend(corpus(&digits, 50_000).into_iter().map(|text| format!("+{text}")));
        let mut valid = 0;
        for text in fixed {
            let parsed = call_service::PhoneNumber::parse(&text).is_ok();
            assert_eq!(pattern.is_match(&text), parsed, "{text:?}");
            valid += usize::from(parsed);
        }
        assert!(valid > 1_000, "the corpus holds valid numbers too ({valid})");
    }

    #[test]
    fn the_name_pattern_accepts_exactly_the_names_the_validators_accept() {
        let pattern = regex::Regex::new(&name_pattern()).unwrap();
        for text in corpus(&["a", " ", "\u{3000}", "\t", "\u{0}", "\u{1c}", "é"], 20_000) {
            let valid = !text.trim().is_empty() && !text.contains('\0');
            assert_eq!(pattern.is_match(&text), valid, "{text:?}");
        }
    }

    #[test]
    fn no_free_text_parameter_admits_a_nul_character() {
        let paths = document()["paths"].as_object().unwrap();
        for (path, item) in paths {
            for (method, operation) in item.as_object().unwrap() {
                for parameter in operation["parameters"].as_array().into_iter().flatten() {
                    let schema = &parameter["schema"];
                    if schema["type"] == "string" && schema["enum"].is_null() && schema["format"].is_null() {
                        let pattern = regex::Regex::new(schema["pattern"].as_str().unwrap()).unwrap();
                        assert!(!pattern.is_match("a\u{0}b"), "{method} {path} {}", parameter["name"]);
                    }
                }
            }
        }
    }

    #[test]
    fn operation_ids_clients_generated_code_from_are_kept() {
        assert_eq!(document()["paths"]["/v1/admin/active-calls"]["get"]["operationId"], "active_calls");
        assert_eq!(document()["paths"]["/v1/calls"]["post"]["operationId"], "create_call");
    }

    #[test]
    fn a_known_path_offers_its_methods_and_an_unknown_one_none() {
        assert_eq!(
            allowed_methods("/v1/calls").map(|mut m| {
                m.sort();
                m
            }),
            Some(vec!["GET".into(), "POST".into()])
        );
        assert_eq!(allowed_methods("/v1/calls/abc"), Some(vec!["GET".into()]));
        assert_eq!(allowed_methods("/v1/nothing"), None);
        assert_eq!(allowed_methods("/v1/calls//cancel"), None, "an empty segment is no parameter");
    }

    #[test]
    fn every_error_response_is_problem_json_and_secured_operations_document_401() {
        let paths = document()["paths"].as_object().unwrap();
        for (path, item) in paths {
            for (method, operation) in item.as_object().unwrap() {
                let responses = operation["responses"].as_object().unwrap();
                for (code, response) in
                    responses.iter().filter(|(c, _)| c.starts_with('4') || c.starts_with('5'))
                {
                    assert!(
                        response["content"]["application/problem+json"].is_object(),
                        "{method} {path} {code}"
                    );
                }
                if operation["security"].as_array().is_some_and(|s| !s.is_empty()) {
                    assert!(responses.contains_key("401"), "{method} {path}");
                }
            }
        }
    }
}
