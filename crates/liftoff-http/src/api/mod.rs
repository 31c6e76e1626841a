//! The JSON API: a router per domain, gathered with their OpenAPI descriptions so the document
//! at `/api/openapi.json` is generated from the same code that serves the routes.

mod alerts;
mod analytics;
mod audit;
mod batch;
mod capture;
mod deployments;
mod experiments;
mod flags;
mod health;
mod import;
mod incidents;
mod insights;
mod keys;
mod launch;
mod monitoring;
mod monitoring_dashboard;
mod ofrep;
mod operations;
mod otlp;
mod posthog_body;
pub(crate) mod reports;
mod responses;
mod sdk;
mod segments;
mod uptime;

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Liftoff API",
        description = "Launch control plane: feature flags, monitoring, analytics, alerts and launch controls. \
                       Authenticate with `Authorization: Bearer <token>`; scopes are `admin`, `read` and `ingest`. \
                       Errors are RFC 9457 problem documents."
    ),
    modifiers(&BearerAuth),
    // Types used only as parameters: the generated `$ref`s need them in `components`.
    components(schemas(
        crate::error::Problem,
        flags::PlanAction,
        analytics::ExportFormat,
        liftoff_core::monitoring::operations::service::OperationKind,
        liftoff_core::monitoring::service::SortBy,
    )),
    tags(
        (name = "health", description = "Liveness, readiness and detailed health"),
        (name = "keys", description = "API keys and their scopes"),
        (name = "audit", description = "The audit trail of every change"),
        (name = "flags", description = "Feature flags: rollouts, kill switches, targeting, history"),
        (name = "ofrep", description = "OpenFeature Remote Evaluation Protocol"),
        (name = "monitoring", description = "Request metrics: ingest and per-endpoint latency, errors and status codes"),
        (name = "sdk", description = "Flag definitions for SDKs that evaluate locally"),
        (name = "alerts", description = "Alert rules and alerts, silences, maintenance windows, notification channels and deliveries"),
        (name = "analytics", description = "Product events (native and PostHog capture), persons, export and erasure"),
        (name = "experiments", description = "A/B experiments on flags: exposures, metrics, statistics and decisions"),
        (name = "launch", description = "The soft-launch cap and waitlist, presets, maintenance mode, phases and user feedback"),
        (name = "reports", description = "Weekly health, incident and launch reports in JSON, Markdown, HTML and PDF; the archive and scheduled delivery"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("lft_…")
                    .build(),
            ),
        );
        // PostHog capture routes: an ingest key as PostHog's project API key, in the body
        // (`api_key`/`token`) or the query (`?api_key=`).
        components.add_security_scheme(
            "posthog_api_key",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                "api_key",
                "A Liftoff ingest key; PostHog SDKs send it in the body as `api_key` or `token`",
            ))),
        );
    }
}

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(health::routes())
        .merge(alerts::routes())
        .merge(keys::routes())
        .merge(audit::routes())
        .merge(flags::routes())
        .merge(ofrep::routes())
        .merge(sdk::routes())
        .merge(import::routes())
        .merge(segments::routes())
        .merge(monitoring::routes())
        .merge(monitoring_dashboard::routes())
        .merge(operations::routes())
        .merge(otlp::routes())
        .merge(capture::routes())
        .merge(analytics::routes())
        .merge(insights::routes())
        .merge(uptime::routes())
        .merge(incidents::routes())
        .merge(launch::routes())
        .merge(experiments::routes())
        .merge(deployments::routes())
        .merge(reports::routes())
}

/// The served document: the generated one with the shared error answers of
/// [`responses::add_shared`].
pub(crate) fn document(doc: &utoipa::openapi::OpenApi) -> serde_json::Value {
    let mut value = serde_json::to_value(doc).unwrap_or_default();
    responses::add_shared(&mut value);
    value
}
