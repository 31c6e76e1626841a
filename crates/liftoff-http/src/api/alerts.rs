//! Alerts: rules, alert instances and acknowledgement, silences, maintenance windows,
//! notification channels (with a test send) and the notification outbox.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use liftoff_core::alerts::model::{
    Alert, AlertQuery, Channel, ChannelInput, Delivery, MaintenanceInput, MaintenanceWindow, Rule,
    RuleInput, Silence, SilenceInput,
};
use liftoff_core::auth::Scope;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, Problem};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::mw::auth::{Admin, Caller, Read};
use crate::state::AppState;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_alerts))
        .routes(routes!(monitoring_alerts))
        .routes(routes!(get_alert))
        .routes(routes!(ack_alert))
        .routes(routes!(list_rules, create_rule))
        .routes(routes!(get_rule, update_rule, delete_rule))
        .routes(routes!(list_silences, create_silence))
        .routes(routes!(delete_silence))
        .routes(routes!(list_maintenance, create_maintenance))
        .routes(routes!(delete_maintenance))
        .routes(routes!(list_channels, create_channel))
        .routes(routes!(get_channel, update_channel, delete_channel))
        .routes(routes!(test_channel))
        .routes(routes!(list_deliveries))
}

/// Alert instances, newest first: active and history, with filters.
#[utoipa::path(get, path = "/api/alerts", tag = "alerts", params(AlertQuery), security(("bearer" = ["read"])),
    responses((status = 200, body = Vec<Alert>), (status = 401, body = Problem, content_type = "application/problem+json")))]
async fn list_alerts(
    State(state): State<AppState>,
    _caller: Caller<Read>,
    ApiQuery(q): ApiQuery<AlertQuery>,
) -> Result<Json<Vec<Alert>>, ApiError> {
    super::monitoring::bounded(q.limit, 100, 1, 1000, "limit")?;
    Ok(Json(state.alerts.alerts(&q).await?))
}

/// The alerts firing or pending now (the seed's alias), firing first.
#[utoipa::path(get, path = "/api/monitoring/alerts", tag = "alerts", security(("bearer" = ["read"])),
    responses((status = 200, body = Vec<Alert>), (status = 401, body = Problem, content_type = "application/problem+json")))]
async fn monitoring_alerts(
    State(state): State<AppState>,
    _caller: Caller<Read>,
) -> Result<Json<Vec<Alert>>, ApiError> {
    Ok(Json(state.alerts.active().await?))
}

#[utoipa::path(get, path = "/api/alerts/{id}", tag = "alerts", params(("id" = i64, Path)), security(("bearer" = ["read"])),
    responses((status = 200, body = Alert), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn get_alert(
    State(state): State<AppState>,
    _caller: Caller<Read>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Alert>, ApiError> {
    Ok(Json(state.alerts.alert(id).await?))
}

/// Acknowledges an alert: records who and when (notifications continue per the repeat interval).
#[utoipa::path(post, path = "/api/alerts/{id}/ack", tag = "alerts", params(("id" = i64, Path)), security(("bearer" = ["admin"])),
    responses((status = 200, body = Alert), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn ack_alert(
    State(state): State<AppState>,
    caller: Caller<Admin>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Alert>, ApiError> {
    Ok(Json(state.alerts.ack(&caller.principal.actor, id).await?))
}

#[utoipa::path(get, path = "/api/alerts/rules", tag = "alerts", security(("bearer" = ["read"])),
    responses((status = 200, body = Vec<Rule>), (status = 401, body = Problem, content_type = "application/problem+json")))]
async fn list_rules(
    State(state): State<AppState>,
    _caller: Caller<Read>,
) -> Result<Json<Vec<Rule>>, ApiError> {
    Ok(Json(state.alerts.rules().await?))
}

/// Creates a rule. An unknown metric or a negative `for_seconds` is a 422 naming the problem.
#[utoipa::path(post, path = "/api/alerts/rules", tag = "alerts", request_body = RuleInput, security(("bearer" = ["admin"])),
    responses((status = 201, body = Rule), (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn create_rule(
    State(state): State<AppState>,
    caller: Caller<Admin>,
    ApiJson(input): ApiJson<RuleInput>,
) -> Result<(StatusCode, Json<Rule>), ApiError> {
    let rule = state
        .alerts
        .create_rule(&caller.principal.actor, input)
        .await?;
    Ok((StatusCode::CREATED, Json(rule)))
}

#[utoipa::path(get, path = "/api/alerts/rules/{id}", tag = "alerts", params(("id" = i64, Path)), security(("bearer" = ["read"])),
    responses((status = 200, body = Rule), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn get_rule(
    State(state): State<AppState>,
    _caller: Caller<Read>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Rule>, ApiError> {
    Ok(Json(state.alerts.rule(id).await?))
}

/// Replaces a rule.
#[utoipa::path(put, path = "/api/alerts/rules/{id}", tag = "alerts", params(("id" = i64, Path)), request_body = RuleInput,
    security(("bearer" = ["admin"])),
    responses((status = 200, body = Rule), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn update_rule(
    State(state): State<AppState>,
    caller: Caller<Admin>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(input): ApiJson<RuleInput>,
) -> Result<Json<Rule>, ApiError> {
    Ok(Json(
        state
            .alerts
            .update_rule(&caller.principal.actor, id, input)
            .await?,
    ))
}

/// Deletes a rule; its alerts stay in the history (an active one resolves).
#[utoipa::path(delete, path = "/api/alerts/rules/{id}", tag = "alerts", params(("id" = i64, Path)), security(("bearer" = ["admin"])),
    responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn delete_rule(
    State(state): State<AppState>,
    caller: Caller<Admin>,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    state
        .alerts
        .delete_rule(&caller.principal.actor, id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/alerts/silences", tag = "alerts", security(("bearer" = ["read"])),
    responses((status = 200, body = Vec<Silence>), (status = 401, body = Problem, content_type = "application/problem+json")))]
async fn list_silences(
    State(state): State<AppState>,
    _caller: Caller<Read>,
) -> Result<Json<Vec<Silence>>, ApiError> {
    Ok(Json(state.alerts.silences().await?))
}

/// Silences notifications of alerts matching a rule id and/or labels between `starts_at`
/// (default now) and `ends_at`.
#[utoipa::path(post, path = "/api/alerts/silences", tag = "alerts", request_body = SilenceInput, security(("bearer" = ["admin"])),
    responses((status = 201, body = Silence), (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn create_silence(
    State(state): State<AppState>,
    caller: Caller<Admin>,
    ApiJson(input): ApiJson<SilenceInput>,
) -> Result<(StatusCode, Json<Silence>), ApiError> {
    let s = state
        .alerts
        .create_silence(&caller.principal.actor, input)
        .await?;
    Ok((StatusCode::CREATED, Json(s)))
}

#[utoipa::path(delete, path = "/api/alerts/silences/{id}", tag = "alerts", params(("id" = i64, Path)), security(("bearer" = ["admin"])),
    responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn delete_silence(
    State(state): State<AppState>,
    caller: Caller<Admin>,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    state
        .alerts
        .delete_silence(&caller.principal.actor, id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/alerts/maintenance", tag = "alerts", security(("bearer" = ["read"])),
    responses((status = 200, body = Vec<MaintenanceWindow>), (status = 401, body = Problem, content_type = "application/problem+json")))]
async fn list_maintenance(
    State(state): State<AppState>,
    _caller: Caller<Read>,
) -> Result<Json<Vec<MaintenanceWindow>>, ApiError> {
    Ok(Json(state.alerts.maintenance_windows().await?))
}

/// A maintenance window: one-off (`starts_at`, `ends_at`) or weekly (`weekly: {days, start,
/// duration_minutes}`, UTC). Notifications are held back while it is active; alerts are kept.
#[utoipa::path(post, path = "/api/alerts/maintenance", tag = "alerts", request_body = MaintenanceInput, security(("bearer" = ["admin"])),
    responses((status = 201, body = MaintenanceWindow), (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn create_maintenance(
    State(state): State<AppState>,
    caller: Caller<Admin>,
    ApiJson(input): ApiJson<MaintenanceInput>,
) -> Result<(StatusCode, Json<MaintenanceWindow>), ApiError> {
    let w = state
        .alerts
        .create_maintenance(&caller.principal.actor, input)
        .await?;
    Ok((StatusCode::CREATED, Json(w)))
}

#[utoipa::path(delete, path = "/api/alerts/maintenance/{id}", tag = "alerts", params(("id" = i64, Path)), security(("bearer" = ["admin"])),
    responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn delete_maintenance(
    State(state): State<AppState>,
    caller: Caller<Admin>,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    state
        .alerts
        .delete_maintenance(&caller.principal.actor, id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Channels, secrets masked (webhook paths, SMTP password).
#[utoipa::path(get, path = "/api/notifications/channels", tag = "alerts", security(("bearer" = ["admin"])),
    responses((status = 200, body = Vec<Channel>), (status = 401, body = Problem, content_type = "application/problem+json")))]
async fn list_channels(
    State(state): State<AppState>,
    _caller: Caller<Admin>,
) -> Result<Json<Vec<Channel>>, ApiError> {
    Ok(Json(
        state
            .alerts
            .channels()
            .await?
            .iter()
            .map(Channel::masked)
            .collect(),
    ))
}

/// Creates a channel: `{name, config: {kind: slack|webhook, url} | {kind: email, host, port, tls,
/// username?, password?, from, to: [...]}}`.
#[utoipa::path(post, path = "/api/notifications/channels", tag = "alerts", request_body = ChannelInput, security(("bearer" = ["admin"])),
    responses((status = 201, body = Channel), (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn create_channel(
    State(state): State<AppState>,
    caller: Caller<Admin>,
    ApiJson(input): ApiJson<ChannelInput>,
) -> Result<(StatusCode, Json<Channel>), ApiError> {
    let c = state
        .alerts
        .create_channel(&caller.principal.actor, input)
        .await?;
    Ok((StatusCode::CREATED, Json(c.masked())))
}

#[utoipa::path(get, path = "/api/notifications/channels/{id}", tag = "alerts", params(("id" = i64, Path)), security(("bearer" = ["admin"])),
    responses((status = 200, body = Channel), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn get_channel(
    State(state): State<AppState>,
    _caller: Caller<Admin>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Channel>, ApiError> {
    Ok(Json(state.alerts.channel(id).await?.masked()))
}

/// Replaces a channel; a masked secret sent back unchanged keeps the stored one.
#[utoipa::path(put, path = "/api/notifications/channels/{id}", tag = "alerts", params(("id" = i64, Path)), request_body = ChannelInput,
    security(("bearer" = ["admin"])),
    responses((status = 200, body = Channel), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn update_channel(
    State(state): State<AppState>,
    caller: Caller<Admin>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(input): ApiJson<ChannelInput>,
) -> Result<Json<Channel>, ApiError> {
    Ok(Json(
        state
            .alerts
            .update_channel(&caller.principal.actor, id, input)
            .await?
            .masked(),
    ))
}

#[utoipa::path(delete, path = "/api/notifications/channels/{id}", tag = "alerts", params(("id" = i64, Path)), security(("bearer" = ["admin"])),
    responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn delete_channel(
    State(state): State<AppState>,
    caller: Caller<Admin>,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    state
        .alerts
        .delete_channel(&caller.principal.actor, id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sends a test message through the channel now; the delivery says `sent` or `failed` with
/// the error.
#[utoipa::path(post, path = "/api/notifications/channels/{id}/test", tag = "alerts", params(("id" = i64, Path)),
    security(("bearer" = ["admin"])),
    responses((status = 200, body = Delivery), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn test_channel(
    State(state): State<AppState>,
    _caller: Caller<Admin>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Delivery>, ApiError> {
    Ok(Json(state.alerts.test_channel(id).await?))
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct DeliveryParams {
    /// At most this many, newest first [default 100].
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
}

/// The notification outbox: pending, sent and failed deliveries with attempts and last error
/// (Liftoff's words). `response_excerpt`, the start of what the receiver answered (at most 100
/// bytes), is included for admin keys only.
#[utoipa::path(get, path = "/api/notifications/deliveries", tag = "alerts", params(DeliveryParams), security(("bearer" = ["read"])),
    responses((status = 200, body = Vec<Delivery>), (status = 401, body = Problem, content_type = "application/problem+json")))]
async fn list_deliveries(
    State(state): State<AppState>,
    caller: Caller<Read>,
    ApiQuery(p): ApiQuery<DeliveryParams>,
) -> Result<Json<Vec<Delivery>>, ApiError> {
    let mut deliveries = state
        .alerts
        .deliveries(super::monitoring::bounded(p.limit, 100, 1, 1000, "limit")?)
        .await?;
    if caller.principal.scope != Scope::Admin {
        for d in &mut deliveries {
            d.response_excerpt = None;
        }
    }
    Ok(Json(deliveries))
}
