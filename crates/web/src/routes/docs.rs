//! `/openapi.json` (generated from the handlers' annotations) and `/docs`, a self-contained page
//! that renders it (no assets from outside the machine).

use actix_web::{web, HttpResponse};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{
    admin, api_keys, call_input, call_resource, calls, campaign_input, campaigns, events, health, operations,
    results, webhook_endpoints, webhooks,
};

#[derive(OpenApi, Debug)]
#[openapi(
    info(title = "Switchboard", description = "Call orchestration for voice-AI agents on Bolna: per-user concurrency slots, a fair queue, Bolna execution IDs and webhooks."),
    paths(
        calls::create_call, calls::get, calls::list, calls::cancel, calls::concurrency,
        admin::create, admin::list, admin::update, admin::held_slots, admin::release, admin::campaigns, admin::audit_log,
        api_keys::create_own, api_keys::list_own, api_keys::revoke_own,
        api_keys::create_for_user, api_keys::list_for_user, api_keys::revoke_for_user,
        campaigns::create, campaigns::list, campaigns::get, campaigns::update, campaigns::action,
        campaigns::add_contacts, campaigns::contacts, campaigns::dnc_add, campaigns::dnc_list, campaigns::dnc_remove,
        results::report, results::results, results::calls_export, results::own_usage, results::admin_usage,
        events::stream, events::create_ticket,
        webhook_endpoints::create, webhook_endpoints::list, webhook_endpoints::show, webhook_endpoints::update,
        webhook_endpoints::delete, webhook_endpoints::rotate_secret, webhook_endpoints::test,
        webhook_endpoints::deliveries, webhook_endpoints::retry, webhook_endpoints::replay,
        webhooks::receive, health::healthz_doc, health::readyz_doc, operations::metrics, operations::diagnostics,
    ),
    components(schemas(
        call_input::CreateCallRequest, call_resource::CallResource, call_resource::CallPage,
        campaigns::CampaignResource, campaigns::ContactsInput, campaigns::ContactInput, campaigns::ContactsAdded,
        campaigns::DncInput, campaign_input::CampaignInput, campaign_input::WindowInput, campaign_input::RetryInput,
        admin::UserResource, admin::CreateUserRequest, admin::CreatedUser, admin::UpdateLimitsRequest, admin::ReleaseRequest,
        events::EventTicket,
        webhook_endpoints::WebhookEndpoint, webhook_endpoints::EndpointWithSecret, webhook_endpoints::WebhookEndpointList,
        webhook_endpoints::CreateWebhookEndpointRequest, webhook_endpoints::UpdateWebhookEndpointRequest,
        webhook_endpoints::DeliveryAttempt, webhook_endpoints::WebhookDelivery, webhook_endpoints::WebhookDeliveryPage,
        webhook_endpoints::ReplayRequest, webhook_endpoints::ReplayAccepted,
        api_keys::ApiKeyResource, api_keys::CreateApiKeyRequest, api_keys::CreatedApiKey, api_keys::ApiKeyList,
        call_service::results::report::CampaignReport, call_service::results::report::ContactFigures,
        call_service::results::report::CallFigures, call_service::results::report::TalkTime,
        call_service::results::report::CostFigures, call_service::results::report::HourFigures,
        call_service::results::UsageReport, call_service::results::usage::UsageGroup, call_service::results::usage::UsageFigures,
    )),
    modifiers(&SecuritySchemes),
    tags((name = "calls", description = "Start and follow calls"), (name = "admin", description = "Operators: users, their keys and limits, slots"),
         (name = "api-keys", description = "Your API keys: issue, list, revoke"),
         (name = "campaigns", description = "Campaigns, contacts, do-not-call"),
         (name = "results", description = "Campaign reports, exports and usage"),
         (name = "events", description = "Live call and campaign events (Server-Sent Events)"),
         (name = "webhook-endpoints", description = "Outbound webhooks: your endpoints, their deliveries, retry and replay"),
         (name = "webhooks", description = "Bolna's status changes"), (name = "operations", description = "Health and readiness")),
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("api_key", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
        components
            .add_security_scheme("admin_token", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

pub fn routes(config: &mut web::ServiceConfig) {
    config.route("/openapi.json", web::get().to(openapi)).route("/docs", web::get().to(docs));
}

async fn openapi() -> HttpResponse {
    HttpResponse::Ok().json(super::contract::document())
}

async fn docs() -> HttpResponse {
    HttpResponse::Ok().content_type("text/html; charset=utf-8").body(include_str!("docs.html"))
}
