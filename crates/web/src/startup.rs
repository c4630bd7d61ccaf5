//! The composition root: settings in, a bound, running HTTP server out.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, App, HttpMessage, HttpServer};
use anyhow::Context;
use call_service::{CallService, CancellationToken};
use tracing_actix_web::{RequestId, TracingLogger};

use crate::events::EventHub;
use crate::problem::ApiError;
use crate::routes;
use crate::settings::Settings;
use crate::state::AppState;
use crate::webhook_guard::WebhookGuard;

/// A built application: its port is bound, its server not yet polled.
pub struct Application {
    port: u16,
    server: Server,
    calls: CallService,
    background: CancellationToken,
    background_task: tokio::task::JoinHandle<()>,
    /// The key cache's upkeep and the webhook bodies' retention.
    upkeep_tasks: Vec<tokio::task::JoinHandle<()>>,
    events: EventHub,
    events_task: tokio::task::JoinHandle<()>,
    shutdown_timeout: Duration,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application").field("port", &self.port).finish_non_exhaustive()
    }
}

/// API keys remembered at most (an entry is a user row: well under a kilobyte).
const KEY_CACHE_CAPACITY: usize = 100_000;

impl Application {
    /// Builds the application; `server.port = 0` binds a free port (tests run in parallel).
    /// The database pool connects lazily, so a database outage shows as `/readyz` 503.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with_clock(settings, Arc::new(call_service::clock::SystemClock)).await
    }

    /// As [`Application::build`], with the campaign scheduler's clock supplied (tests move it).
    pub async fn build_with_clock(
        settings: Settings,
        clock: Arc<dyn call_service::clock::Clock>,
    ) -> anyhow::Result<Self> {
        let pool = crate::database::lazy_pool(&settings.database)?;
        let address = format!("{}:{}", settings.server.host, settings.server.port);
        let listener = TcpListener::bind(&address).with_context(|| format!("binding {address}"))?;
        let port = listener.local_addr()?.port();
        let calls = crate::components::call_service(&settings, pool.clone(), clock)?;
        // Size the account line pool now when the database answers; the dispatcher retries otherwise.
        if let Err(error) =
            tokio::time::timeout(Duration::from_secs(5), calls.prepare()).await.unwrap_or(Ok(()))
        {
            tracing::warn!(error = %error, "could not size the account line pool yet");
        }
        let background = CancellationToken::new();
        let background_task = tokio::spawn(run_background(calls.clone(), background.clone()));
        let shutdown_timeout = Duration::from_secs(settings.server.shutdown_timeout_seconds);
        let webhook_guard = WebhookGuard::from_settings(&settings.webhook);
        let events = EventHub::new(settings.events.client_buffer);
        let keys = Arc::new(call_service::users::KeyCache::new(
            Duration::from_secs(settings.auth.key_cache_seconds),
            KEY_CACHE_CAPACITY,
        ));
        let key_upkeep =
            tokio::spawn(call_service::users::run_key_upkeep(pool.clone(), keys.clone(), background.clone()));
        let retention = settings
            .webhook
            .retention()
            .map(|keep| tokio::spawn(calls.clone().run_webhook_retention(keep, background.clone())));
        let request_limit =
            crate::request_limit::RequestLimiter::from_settings(&settings.http.rate_limit).map(Arc::new);
        let outbound =
            crate::outbound::OutboundContext::new(&settings.outbound_webhooks, &calls.metrics().registry)?;
        let state = AppState {
            pool,
            settings: Arc::new(settings),
            calls: calls.clone(),
            webhook_guard,
            events: events.clone(),
            keys,
            request_limit,
            outbound,
        };
        let events_task = tokio::spawn(crate::events::run_hub(state.clone(), background.clone()));
        let fanout = tokio::spawn(crate::outbound::run_fanout(state.clone(), background.clone()));
        let sender = tokio::spawn(crate::outbound::run_sender(state.clone(), background.clone()));
        let upkeep_tasks =
            [Some(key_upkeep), retention, Some(fanout), Some(sender)].into_iter().flatten().collect();
        let server = serve(listener, state)?;
        Ok(Self {
            port,
            server,
            calls,
            background,
            background_task,
            upkeep_tasks,
            events,
            events_task,
            shutdown_timeout,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle to stop the HTTP server from elsewhere (tests).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Runs until the server is stopped (SIGTERM stops it gracefully: no new connections, requests
    /// in flight finish), then lets the dispatcher and reconciler finish their current pass, then
    /// waits for requests to Bolna still in flight and their recording — all within
    /// `server.shutdown_timeout_seconds`.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run(false).await
    }

    /// As [`Application::run_until_stopped`], stopping on SIGTERM (gracefully) or SIGINT/SIGQUIT
    /// (at once) — what `serve` and `dev` run. Embedders and tests keep their process's signals.
    pub async fn run_until_signalled(self) -> std::io::Result<()> {
        self.run(true).await
    }

    async fn run(self, on_signals: bool) -> std::io::Result<()> {
        let signals =
            on_signals.then(|| tokio::spawn(stop_on_signal(self.server.handle(), self.events.clone())));
        let served = self.server.await;
        if let Some(signals) = signals {
            signals.abort();
        }
        tracing::info!("HTTP server stopped; finishing background work");
        self.events.close();
        self.background.cancel();
        let deadline = tokio::time::Instant::now() + self.shutdown_timeout;
        if tokio::time::timeout_at(deadline, self.background_task).await.is_err() {
            tracing::warn!("background tasks did not stop in time");
        }
        let _ = tokio::time::timeout_at(deadline, self.events_task).await;
        let _ = tokio::time::timeout_at(deadline, futures::future::join_all(self.upkeep_tasks)).await;
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if !self.calls.drain(left).await {
            tracing::warn!(
                in_flight = self.calls.in_flight(),
                "shutdown timed out waiting for requests to Bolna"
            );
        }
        served
    }
}

/// SIGTERM stops gracefully (no new connections; requests in flight finish), SIGINT and SIGQUIT
/// at once, as actix would; either way open event streams end first, since they never finish.
async fn stop_on_signal(server: actix_web::dev::ServerHandle, events: EventHub) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int), Ok(mut quit)) =
        (signal(SignalKind::terminate()), signal(SignalKind::interrupt()), signal(SignalKind::quit()))
    else {
        tracing::error!("cannot listen for signals; stop the process with SIGKILL");
        return;
    };
    let graceful = tokio::select! {
        _ = term.recv() => true,
        _ = int.recv() => false,
        _ = quit.recv() => false,
    };
    tracing::info!(graceful, "stop signal received");
    events.close();
    server.stop(graceful).await;
}

/// The dispatcher and the reconciler, after making sure the account line pool is sized.
async fn run_background(calls: CallService, shutdown: CancellationToken) {
    while let Err(error) = calls.prepare().await {
        tracing::warn!(error = %error, "sizing the account line pool failed; retrying");
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
    }
    let reconciler = tokio::spawn(calls.clone().run_reconciler(shutdown.clone()));
    let account = tokio::spawn(calls.clone().run_account_checks(shutdown.clone()));
    calls.run_dispatcher(shutdown).await;
    let _ = reconciler.await;
    let _ = account.await;
}

fn serve(listener: TcpListener, state: AppState) -> anyhow::Result<Server> {
    let max_body = state.settings.server.max_body_bytes;
    let shutdown_timeout = state.settings.server.shutdown_timeout_seconds;
    let origins = state.settings.http.cors_allowed_origins.clone();
    // 0: actix's default, one worker per CPU core.
    let workers = state.settings.server.workers;
    let data = web::Data::new(state);
    let server =
        HttpServer::new(move || {
            App::new()
                .wrap(crate::cors::policy(&origins))
                .wrap(from_fn(refuse_nul_in_url))
                .wrap(from_fn(echo_request_id))
                .wrap(from_fn(crate::request_limit::add_rate_limit_fields))
                .wrap(TracingLogger::default())
                .app_data(data.clone())
                .app_data(web::PayloadConfig::new(max_body))
                .app_data(web::QueryConfig::default().error_handler(|error, _| {
                    ApiError::bad_request("invalid_query", error.to_string()).into()
                }))
                .app_data(
                    web::JsonConfig::default()
                        .limit(max_body)
                        .error_handler(|error, _| crate::extract::json_error(error).into()),
                )
                .service(routes::health::healthz)
                .service(routes::health::readyz)
                .configure(routes::results::routes)
                .configure(routes::calls::routes)
                .configure(routes::campaigns::routes)
                .configure(routes::admin::routes)
                .configure(routes::api_keys::routes)
                .configure(routes::webhook_endpoints::routes)
                .configure(routes::webhooks::routes)
                .configure(routes::events::routes)
                .configure(routes::console::routes)
                .configure(routes::docs::routes)
                .configure(routes::operations::routes)
                .default_service(web::to(routes::contract::fallback))
        });
    let server = match workers {
        0 => server,
        workers => server.workers(workers),
    };
    let server = server.shutdown_timeout(shutdown_timeout).disable_signals().listen(listener)?.run();
    Ok(server)
}

/// Refuses a URL carrying an encoded NUL character (`%00`) before any handler reads it: no
/// parameter may hold one (PostgreSQL's text cannot), so this is the one place that says so.
async fn refuse_nul_in_url(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let uri = request.uri();
    let part = if uri.path().contains("%00") {
        Some("path")
    } else {
        uri.query().filter(|query| query.contains("%00")).map(|_| "query")
    };
    if let Some(part) = part {
        let detail = format!("the {part} contains a NUL character (%00), which no parameter may hold");
        return Err(ApiError::new(
            actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_character",
            detail,
        )
        .with("field", part)
        .into());
    }
    next.call(request).await
}

/// Returns the request's ID (the one in its logs) as `x-request-id`.
async fn echo_request_id(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let request_id = request.extensions().get::<RequestId>().copied();
    let mut response = next.call(request).await?;
    if let Some(id) = request_id {
        if let Ok(value) = HeaderValue::from_str(&id.to_string()) {
            response.headers_mut().insert(HeaderName::from_static("x-request-id"), value);
        }
    }
    Ok(response)
}
