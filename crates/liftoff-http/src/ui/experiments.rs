//! The Experiments page: every experiment with its status and current decision, a form to
//! start one on a flag with variants, and an experiment's page with its users per variant,
//! each metric's uplift and interval, the sample-ratio and multiple-exposure warnings,
//! guardrails, the decision and the stop (and ship) form. Editors change experiments, as they
//! change the flags an experiment rewrites; everything goes through `ExperimentService`, so
//! the page and `/api/experiments` answer alike.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use futures_util::future::join_all;
use liftoff_core::experiments::model::{AnalysisSettings, Metrics};
use liftoff_core::experiments::results::{
    Decision, DecisionStatus, ExperimentResults, MetricResult, Timeline, VariantResult,
    WIN_PROBABILITY,
};
use liftoff_core::experiments::stats::Method;
use liftoff_core::experiments::{
    ExperimentView, Metric, MetricKind, NewExperiment, StopExperiment,
};
use maud::{Markup, html};
use serde::Deserialize;

use crate::state::AppState;
use crate::ui::badge::{Tone, badge};
use crate::ui::failure::failure;
use crate::ui::flash::Flash;
use crate::ui::form::CsrfForm;
use crate::ui::format::percent;
use crate::ui::layout::{Window, chart_with_intervals, error_page, page};
use crate::ui::session::{Refused, UiUser, encode_component};

fn decision_label(d: &Decision) -> String {
    let variant = d.variant.as_deref().unwrap_or("—");
    match d.status {
        DecisionStatus::Ship => format!("Ship {variant}"),
        DecisionStatus::Rollback => format!("Roll back to {variant}"),
        DecisionStatus::KeepRunning => "Keep running".into(),
        DecisionStatus::Inconclusive => "Inconclusive".into(),
    }
}

fn decision_badge(d: &Decision) -> Markup {
    let tone = match d.status {
        DecisionStatus::Ship => Tone::Ok,
        DecisionStatus::Rollback => Tone::Crit,
        DecisionStatus::KeepRunning => Tone::Info,
        DecisionStatus::Inconclusive => Tone::Warn,
    };
    html! { span class=(tone.class()) { (decision_label(d)) } }
}

fn decision_class(status: DecisionStatus) -> &'static str {
    match status {
        DecisionStatus::Ship => "decision ship",
        DecisionStatus::Rollback => "decision rollback",
        DecisionStatus::KeepRunning => "decision keep-running",
        DecisionStatus::Inconclusive => "decision inconclusive",
    }
}

/// A relative change as signed percent ("+12.3 %"); the sign is the point of the number.
fn signed_percent(x: f64) -> String {
    if x.is_finite() {
        format!("{:+.1}\u{a0}%", x * 100.0)
    } else {
        "—".into()
    }
}

/// Means and counts per user: enough digits to tell variants apart, no more.
fn number(v: f64) -> String {
    match v.abs() {
        a if !a.is_finite() => "—".into(),
        a if a >= 1000.0 => format!("{v:.0}"),
        a if a >= 10.0 => format!("{v:.2}"),
        _ => format!("{v:.3}"),
    }
}

fn metric_value(kind: MetricKind, v: f64) -> String {
    match kind {
        MetricKind::Conversion | MetricKind::ErrorRate => percent(v),
        MetricKind::LatencyP95 if v.is_finite() => format!("{v:.0}\u{a0}ms"),
        _ => number(v),
    }
}

fn value_heading(kind: MetricKind) -> &'static str {
    match kind {
        MetricKind::Conversion => "Conversion",
        MetricKind::Mean => "Mean per user",
        MetricKind::Count => "Events per user",
        MetricKind::Ratio => "Ratio",
        MetricKind::ErrorRate => "Error rate",
        MetricKind::LatencyP95 => "p95 latency",
    }
}

/// A level such as 0.95 or 0.975 as "95 %" or "97.5 %": no decimal that says nothing.
fn share(fraction: f64) -> String {
    let p = fraction * 100.0;
    if (p - p.round()).abs() < 1e-9 {
        format!("{p:.0}\u{a0}%")
    } else {
        format!("{p:.1}\u{a0}%")
    }
}

/// p-values below this read as "< 0.0001": more digits would claim a precision the
/// approximations behind them do not have.
const SMALLEST_P: f64 = 0.0001;

fn p_value(p: f64) -> String {
    if p < SMALLEST_P {
        "< 0.0001".into()
    } else {
        format!("{p:.4}")
    }
}

fn verdict_badge(v: &VariantResult) -> Markup {
    let (tone, label) = match v.verdict {
        Some("better") => (Tone::Ok, "better"),
        Some("worse") => (Tone::Crit, "worse"),
        Some(_) => (Tone::Muted, "no clear difference"),
        None => return html! { span.muted { "—" } },
    };
    html! { span class=(tone.class()) { (label) } }
}

/// One metric's numbers per variant, then its intervals drawn.
fn metric_table(m: &MetricResult, control: &str, method: Method, interval: &str) -> Markup {
    html! {
        table.experiment-metric data-metric=(m.metric) {
            thead { tr {
                th { "Variant" } th { "Users" } th { (value_heading(m.kind)) }
                th { "Uplift (" (interval) ")" }
                th { @match method { Method::Frequentist => "p-value", Method::Bayesian => "Chance to beat control" } }
                th { "Verdict" }
            } }
            tbody { @for v in &m.variants { tr data-variant=(v.variant) {
                td { code { (v.variant) } @if v.variant == control { " " span.badge { "control" } } }
                td.mono { (v.users) }
                td.mono { (metric_value(m.kind, v.value)) }
                td.mono {
                    @if let Some(e) = &v.error { span.muted { (e) } }
                    @else if let Some(u) = &v.uplift {
                        (signed_percent(u.relative)) " "
                        span.muted { "[" (signed_percent(u.ci_low)) ", " (signed_percent(u.ci_high)) "]" }
                    } @else { span.muted { "baseline" } }
                }
                td.mono {
                    @match (method, v.p_value, v.chance_to_beat_control) {
                        (Method::Frequentist, Some(p), _) => {
                            span title=(v.p_value_raw.map(|r| format!("{} before the Holm–Bonferroni correction", p_value(r))).unwrap_or_default()) { (p_value(p)) }
                        },
                        (Method::Bayesian, _, Some(c)) => { (percent(c)) },
                        _ => { span.muted { "—" } },
                    }
                }
                td { (verdict_badge(v)) }
            } } }
        }
        (ci_chart(m))
    }
}

/// The chart's geometry, in SVG user units; the SVG scales to its box.
const CHART_WIDTH: f64 = 640.0;
const LABEL_WIDTH: f64 = 130.0;
const RIGHT_MARGIN: f64 = 24.0;
const ROW_HEIGHT: f64 = 28.0;
const AXIS_HEIGHT: f64 = 22.0;

/// Each treatment's interval of relative uplift as a horizontal bar around 0, coloured by its
/// verdict: drawn as inline SVG so it reads without scripts and prints as it shows.
fn ci_chart(m: &MetricResult) -> Markup {
    let rows: Vec<(&str, f64, f64, f64, &str)> = m
        .variants
        .iter()
        .filter(|v| v.error.is_none())
        .filter_map(|v| {
            let u = v.uplift.as_ref()?;
            [u.relative, u.ci_low, u.ci_high]
                .iter()
                .all(|x| x.is_finite())
                .then_some((
                    v.variant.as_str(),
                    u.relative,
                    u.ci_low,
                    u.ci_high,
                    v.verdict.unwrap_or("flat"),
                ))
        })
        .collect();
    if rows.is_empty() {
        return html! {};
    }
    let lo = rows.iter().map(|r| r.2).fold(0.0_f64, f64::min);
    let hi = rows.iter().map(|r| r.3).fold(0.0_f64, f64::max);
    // Room either side so a bar never touches the edge, and a scale even when all is zero.
    let pad = ((hi - lo) * 0.08).max(0.005);
    let (lo, hi) = (lo - pad, hi + pad);
    let plot = CHART_WIDTH - LABEL_WIDTH - RIGHT_MARGIN;
    let x = |v: f64| LABEL_WIDTH + (v - lo) / (hi - lo) * plot;
    let height = ROW_HEIGHT * rows.len() as f64 + AXIS_HEIGHT + 8.0;
    let axis_y = ROW_HEIGHT * rows.len() as f64 + 4.0;
    let summary = format!(
        "Relative uplift of {} against control with its interval, per treatment",
        m.metric
    );
    html! {
        figure.chart.ci-chart {
            svg viewBox=(format!("0 0 {CHART_WIDTH} {height:.0}")) role="img" aria-label=(summary) {
                title { (summary) }
                line.ci-zero x1=(format!("{:.1}", x(0.0))) x2=(format!("{:.1}", x(0.0))) y1="2" y2=(format!("{axis_y:.1}")) {}
                @for (i, (variant, rel, low, high, verdict)) in rows.iter().enumerate() {
                    @let cy = ROW_HEIGHT * i as f64 + ROW_HEIGHT / 2.0 + 2.0;
                    g class={ "ci-row ci-" (verdict) } data-variant=(variant) {
                        title { (variant) ": " (signed_percent(*rel)) " [" (signed_percent(*low)) ", " (signed_percent(*high)) "] · " (verdict) }
                        text.ci-label x=(format!("{:.1}", LABEL_WIDTH - 8.0)) y=(format!("{:.1}", cy + 4.0)) text-anchor="end" { (variant) }
                        rect.ci-bar x=(format!("{:.1}", x(*low))) y=(format!("{:.1}", cy - 7.0))
                            width=(format!("{:.1}", (x(*high) - x(*low)).max(2.0))) height="14" rx="3" {}
                        line.ci-point x1=(format!("{:.1}", x(*rel))) x2=(format!("{:.1}", x(*rel)))
                            y1=(format!("{:.1}", cy - 10.0)) y2=(format!("{:.1}", cy + 10.0)) {}
                    }
                }
                @for (v, anchor) in [(lo, "start"), (0.0, "middle"), (hi, "end")] {
                    text.ci-tick x=(format!("{:.1}", x(v))) y=(format!("{:.1}", axis_y + 14.0)) text-anchor=(anchor) { @if v == 0.0 { "0" } @else { (signed_percent(v)) } }
                }
            }
            figcaption { "Relative uplift against control; the bar is the interval, the mark the estimate. Green: better, red: worse, grey: no clear difference." }
        }
    }
}

/// Each treatment's relative uplift on the primary metric, in percent, with its interval, as
/// it stood over the experiment's course: whether the effect settled or still wanders.
fn timeline_chart(t: &Timeline, control: &str) -> Markup {
    let treatments: Vec<&str> = t
        .points
        .last()
        .map(|p| {
            p.variants
                .iter()
                .map(|v| v.variant.as_str())
                .filter(|v| *v != control)
                .collect()
        })
        .unwrap_or_default();
    let drawable = |v: &VariantResult| v.uplift.is_some() && v.error.is_none();
    if treatments.is_empty() || !t.points.iter().any(|p| p.variants.iter().any(drawable)) {
        return html! {};
    }
    let pct = |x: f64| x.is_finite().then(|| (x * 10_000.0).round() / 100.0);
    let mut data = vec![serde_json::json!(
        t.points
            .iter()
            .map(|p| p.at.timestamp())
            .collect::<Vec<_>>()
    )];
    let mut names = Vec::new();
    for name in &treatments {
        let uplift = |part: fn(&liftoff_core::experiments::results::Uplift) -> f64| {
            t.points
                .iter()
                .map(|p| {
                    p.variants
                        .iter()
                        .find(|v| v.variant == *name)
                        // A comparison that could not be made is a gap, not a zero.
                        .filter(|v| v.error.is_none())
                        .and_then(|v| v.uplift.as_ref())
                        .and_then(|u| pct(part(u)))
                })
                .collect::<Vec<_>>()
        };
        data.push(serde_json::json!(uplift(|u| u.relative)));
        data.push(serde_json::json!(uplift(|u| u.ci_low)));
        data.push(serde_json::json!(uplift(|u| u.ci_high)));
        names.push(format!("{name} uplift %"));
        names.push(format!("{name} interval low"));
        names.push(format!("{name} interval high"));
    }
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    html! {
        section #experiment-timeline {
            h3 { "Cumulative uplift on " code { (t.metric) } }
            (chart_with_intervals("uplift-chart", "Relative uplift against control over time, %, with its interval (cumulative: every user exposed so far)", &names, &serde_json::Value::Array(data)))
        }
    }
}

fn metric_section(
    m: &MetricResult,
    role: &str,
    control: &str,
    method: Method,
    interval: &str,
) -> Markup {
    html! {
        section.experiment-metric-section {
            h3 { code { (m.metric) } " · " (role) @if !m.higher_is_better { span.muted { " (lower is better)" } } }
            @if let Some(why) = &m.unavailable { p.muted { (why) } }
            @else if m.variants.is_empty() { p.muted { "No data yet." } }
            @else { (metric_table(m, control, method, interval)) }
        }
    }
}

fn results_view(
    view: &ExperimentView,
    r: &ExperimentResults,
    timeline: Option<&Timeline>,
) -> Markup {
    let e = &view.experiment;
    let total: u64 = r.variants.iter().map(|v| v.users).sum();
    let coverage = share(1.0 - e.analysis.alpha);
    let interval = match r.method {
        Method::Frequentist if r.sequential => format!("{coverage} always-valid interval"),
        Method::Frequentist => format!("{coverage} confidence interval"),
        Method::Bayesian => format!("{coverage} credible interval"),
    };
    html! {
        @if r.srm.flagged {
            div.flash.error #srm-banner role="alert" {
                strong { "Sample ratio mismatch. " }
                "Users split " (r.variants.iter().map(|v| v.users.to_string()).collect::<Vec<_>>().join(" / "))
                " where the flag should give "
                (r.srm.expected.iter().map(|w| format!("{w:.0}\u{a0}%")).collect::<Vec<_>>().join(" / "))
                " (p = " (format!("{:.2e}", r.srm.p_value)) "). Something between assignment and exposure logging drops or adds users of one variant, so the groups are no longer comparable: do not trust any number below until that is fixed."
            }
        }
        @if r.multiple_exposures > 0 {
            div.flash.warn #multiple-exposures role="status" {
                strong { (r.multiple_exposures) (if r.multiple_exposures == 1 { " user" } else { " users" }) " saw more than one variant" }
                ": left out of every metric. A few are normal (a user whose targeting changed); many mean assignment is not sticky, for example different user ids for one person."
            }
        }
        section class=(decision_class(r.decision.status)) #experiment-decision {
            div.label { "Decision" }
            div.verdict { (decision_label(&r.decision)) }
            p.why { (r.decision.why) }
            p.muted { "Computed " (r.computed_at.format("%Y-%m-%d %H:%M:%S UTC")) " · "
                @match (r.method, r.sequential) {
                    (Method::Bayesian, _) => { "Bayesian: ship when a treatment's chance to beat control passes " (share(WIN_PROBABILITY)) },
                    (Method::Frequentist, true) => { "frequentist, sequential: safe to read at any time; p-values Holm-adjusted across goal metrics" },
                    (Method::Frequentist, false) => { "frequentist, fixed horizon: p-values Holm-adjusted across goal metrics" },
                }
            }
        }
        h2 { "Variants" }
        table #experiment-variants {
            thead { tr { th { "Variant" } th { "Users" } th { "Observed share" } th { "Configured share" } } }
            tbody { @for (v, expected) in r.variants.iter().zip(&r.srm.expected) { tr data-variant=(v.variant) {
                td { code { (v.variant) } @if v.variant == e.control { " " span.badge { "control" } } }
                td.mono.users { (v.users) }
                td.mono { @if total > 0 { (percent(v.users as f64 / total as f64)) } @else { "—" } }
                td.mono { (percent(expected / 100.0)) }
            } } }
        }
        h2 { "Metrics" }
        @for (i, m) in r.metrics.iter().enumerate() {
            (metric_section(m, if i == 0 { "primary" } else { "secondary" }, &e.control, r.method, &interval))
            @if i == 0 { @if let Some(t) = timeline { (timeline_chart(t, &e.control)) } }
        }
        h2 { "Guardrails" }
        @if r.guardrails.is_empty() {
            p.muted { "No guardrails. Guardrails are metrics that must not get worse (errors, latency); a significant regression recommends rolling back." }
        } @else {
            @for g in &r.guardrails { (metric_section(g, "guardrail", &e.control, r.method, &interval)) }
        }
    }
}

fn stop_form(view: &ExperimentView, user: &UiUser) -> Markup {
    let e = &view.experiment;
    html! {
        h2 { "Stop the experiment" }
        form.inline #experiment-stop method="post" action={ "/experiments/" (encode_component(&e.key)) "/stop" }
            data-confirm={ "Stop experiment " (e.key) "? Exposures stop counting." } {
            input type="hidden" name="csrf" value=(user.csrf);
            label { "Reason" input name="reason" required maxlength="1000" size="40" placeholder="Treatment wins on conversion"; }
            label { "Ship variant"
                select name="ship_variant" {
                    option value="" { "none: leave the flag as it is" }
                    @for v in &e.variants { option value=(v.name) { (v.name) } }
                }
            }
            button.danger type="submit" { "Stop" }
        }
        p.muted.note { "Shipping a variant leaves it the flag's only variant, so everyone gets it (an audited flag change)." }
    }
}

async fn detail_page(
    state: &AppState,
    user: &UiUser,
    key: &str,
    message: Flash,
    status: StatusCode,
) -> Response {
    let (view, results, timeline) = tokio::join!(
        state.experiments.get(key),
        state.experiments.results(key),
        state.experiments.timeline(key)
    );
    let view = match view {
        Ok(v) => v,
        Err(e) => {
            let (m, s) = failure(&e);
            return error_page(s, "Experiment", &m);
        }
    };
    // The definition and the stop form stay usable when only the analysis fails.
    let results = results.map_err(|e| failure(&e).0);
    let e = &view.experiment;
    let body = html! {
        p { a href="/experiments" { "← All experiments" } }
        (message)
        p #experiment-summary {
            (badge(view.status)) " "
            code { (e.key) } " on flag " a href={ "/flags/" (encode_component(&e.flag_id)) } { code { (e.flag_id) } }
            " · " (e.environment.as_str()) " · control " code { (e.control) }
            " · started " span.mono { (e.starts_at.format("%Y-%m-%d %H:%M")) }
            @if let Some(end) = e.ends_at { " · planned end " span.mono { (end.format("%Y-%m-%d %H:%M")) } }
        }
        @if let Some(s) = &e.stopped {
            p #experiment-stopped {
                strong { "Stopped" } " " span.mono { (s.at.format("%Y-%m-%d %H:%M")) } " by " (s.by) ": " (s.reason)
                @if let Some(v) = &s.shipped_variant { " · shipped " code { (v) } " to everyone" }
            }
        }
        @if !e.hypothesis.is_empty() {
            h2 { "Hypothesis" }
            p #experiment-hypothesis { (e.hypothesis) }
        }
        @match &results {
            Ok(r) => { (results_view(&view, r, timeline.as_ref().ok())) },
            Err(m) => { (Flash::error(format!("The results could not be computed: {m}")).with_id("results-error")) },
        }
        @if user.user.role.can_edit() && e.stopped.is_none() { (stop_form(&view, user)) }
    };
    let mut res = page(user, "/experiments", Window::H24, &e.name, body);
    *res.status_mut() = status;
    res
}

pub async fn detail(
    State(state): State<AppState>,
    user: UiUser,
    Path(key): Path<String>,
) -> Response {
    detail_page(&state, &user, &key, Flash::None, StatusCode::OK).await
}

fn new_form(state: &AppState, user: &UiUser) -> Markup {
    let flags: Vec<_> = state
        .flags
        .list()
        .into_iter()
        .filter(|f| f.variants.len() >= 2)
        .collect();
    html! {
        h2 { "New experiment" }
        @if flags.is_empty() {
            p.muted #no-variant-flags { "No flag has two or more variants yet. Give a flag its variants (through " code { "/api/feature-flags" } ") and it can carry an experiment." }
        } @else {
            form.inline #new-experiment method="post" action="/experiments" {
                input type="hidden" name="csrf" value=(user.csrf);
                label { "Key" input name="key" required maxlength="100" pattern="[A-Za-z0-9._\\-]+" placeholder="checkout-test"; }
                label { "Flag" select name="flag_id" required {
                    @for f in &flags {
                        option value=(f.flag_id.as_str()) {
                            (f.flag_id.as_str()) " (" (f.variants.iter().map(|v| v.name.as_str()).collect::<Vec<_>>().join(", ")) ")"
                        }
                    }
                } }
                label { "Hypothesis" input name="hypothesis" maxlength="5000" size="40" placeholder="The new checkout converts better"; }
                label { "Primary metric" select name="metric_kind" {
                    option value="conversion" { "conversion" } option value="count" { "count" } option value="mean" { "mean" }
                } }
                label { "Event" input name="event" required maxlength="200" placeholder="purchase"; }
                label { "Property (mean only)" input name="property" maxlength="200" placeholder="amount"; }
                label { "Method" select name="method" {
                    option value="bayesian" { "bayesian" } option value="frequentist" { "frequentist" }
                } }
                label title="Frequentist only: results stay valid however often they are read" {
                    "Sequential" input type="checkbox" name="sequential" value="true";
                }
                button type="submit" { "Start" }
            }
        }
    }
}

async fn list_page(
    state: &AppState,
    user: &UiUser,
    message: Flash,
    status: StatusCode,
) -> Response {
    let experiments = match state.experiments.list().await {
        Ok(list) => list,
        Err(e) => {
            let (m, s) = failure(&e);
            return error_page(s, "Experiments", &m);
        }
    };
    let decisions = join_all(
        experiments
            .iter()
            .map(|v| state.experiments.results(&v.experiment.key)),
    )
    .await;
    let body = html! {
        (message)
        @if experiments.is_empty() {
            div.empty { p { "No experiments yet. An experiment compares a flag's variants on a metric, from the users each variant was given to." } }
        } @else {
            table #experiments {
                thead { tr {
                    th { "Experiment" } th { "Flag" } th { "Status" } th { "Started" } th { "Primary metric" } th { "Decision" }
                } }
                tbody { @for (v, r) in experiments.iter().zip(&decisions) {
                    @let e = &v.experiment;
                    tr data-experiment=(e.key) {
                        td {
                            a href={ "/experiments/" (encode_component(&e.key)) } { code { (e.key) } }
                            @if e.name != e.key { div.muted { (e.name) } }
                        }
                        td { a href={ "/flags/" (encode_component(&e.flag_id)) } { code { (e.flag_id) } } }
                        td { (badge(v.status)) }
                        td.mono { (e.starts_at.format("%Y-%m-%d %H:%M")) }
                        td { code { (e.metrics.primary.label()) } }
                        td { @match r {
                            Ok(r) => { (decision_badge(&r.decision)) },
                            Err(_) => { span.muted title="the results could not be computed; open the experiment for the reason" { "—" } },
                        } }
                    }
                } }
            }
        }
        @if user.user.role.can_edit() { (new_form(state, user)) }
    };
    let mut res = page(user, "/experiments", Window::H24, "Experiments", body);
    *res.status_mut() = status;
    res
}

pub async fn list(State(state): State<AppState>, user: UiUser) -> Response {
    list_page(&state, &user, Flash::None, StatusCode::OK).await
}

fn text(s: String) -> Option<String> {
    Some(s.trim().to_owned()).filter(|s| !s.is_empty())
}

#[derive(Deserialize)]
pub struct CreateForm {
    key: String,
    flag_id: String,
    #[serde(default)]
    hypothesis: String,
    metric_kind: MetricKind,
    #[serde(default)]
    event: String,
    #[serde(default)]
    property: String,
    method: Method,
    #[serde(default)]
    sequential: bool,
}

impl CreateForm {
    fn into_new(self) -> NewExperiment {
        let kind = self.metric_kind;
        let primary = Metric {
            kind,
            event: text(self.event).filter(|_| !kind.from_monitoring()),
            // The field stays filled when someone switches kind; only a mean reads it.
            property: text(self.property).filter(|_| kind == MetricKind::Mean),
            denominator_event: None,
            window_hours: liftoff_core::experiments::model::DEFAULT_WINDOW_HOURS,
            higher_is_better: None,
        };
        NewExperiment {
            key: self.key.trim().to_owned(),
            flag_id: self.flag_id,
            name: None,
            hypothesis: text(self.hypothesis),
            control: None,
            environment: None,
            weights: None,
            metrics: Metrics {
                primary,
                secondary: Vec::new(),
                guardrails: Vec::new(),
            },
            analysis: AnalysisSettings {
                method: self.method,
                sequential: self.sequential,
                ..AnalysisSettings::default()
            },
            starts_at: None,
            ends_at: None,
        }
    }
}

pub async fn create(
    State(state): State<AppState>,
    user: UiUser,
    form: Result<CsrfForm<CreateForm>, Refused>,
) -> Response {
    let f = match user.accept(form, UiUser::require_editor) {
        Err(Refused::Page(res)) => return res,
        Err(Refused::Incomplete(e)) => {
            return list_page(
                &state,
                &user,
                Flash::error(format!("The form was incomplete: {e}")),
                StatusCode::BAD_REQUEST,
            )
            .await;
        }
        Ok(f) => f,
    };
    match state
        .experiments
        .create(&user.user.actor(), f.into_new())
        .await
    {
        Ok(v) => Redirect::to(&format!(
            "/experiments/{}",
            encode_component(&v.experiment.key)
        ))
        .into_response(),
        Err(e) => {
            let (m, s) = failure(&e);
            list_page(&state, &user, Flash::Error(m), s).await
        }
    }
}

#[derive(Deserialize)]
pub struct StopForm {
    #[serde(default)]
    reason: String,
    #[serde(default)]
    ship_variant: String,
}

pub async fn stop(
    State(state): State<AppState>,
    user: UiUser,
    Path(key): Path<String>,
    form: Result<CsrfForm<StopForm>, Refused>,
) -> Response {
    let (message, status) = match user.accept(form, UiUser::require_editor) {
        Err(Refused::Page(res)) => return res,
        Err(Refused::Incomplete(e)) => (
            format!("The form was incomplete: {e}"),
            StatusCode::BAD_REQUEST,
        ),
        Ok(f) => {
            let input = StopExperiment {
                ship_variant: text(f.ship_variant),
                reason: f.reason,
            };
            match state
                .experiments
                .stop(&user.user.actor(), &key, input)
                .await
            {
                Ok(_) => {
                    return Redirect::to(&format!("/experiments/{}", encode_component(&key)))
                        .into_response();
                }
                Err(e) => failure(&e),
            }
        }
    };
    detail_page(&state, &user, &key, Flash::Error(message), status).await
}

#[cfg(test)]
mod tests {
    use liftoff_core::experiments::results::Uplift;

    use super::*;

    fn row(variant: &str, uplift: Option<(f64, f64, f64)>, verdict: &'static str) -> VariantResult {
        VariantResult {
            variant: variant.into(),
            users: 100,
            value: 0.1,
            uplift: uplift.map(|(relative, ci_low, ci_high)| Uplift {
                relative,
                ci_low,
                ci_high,
            }),
            p_value: None,
            p_value_raw: None,
            chance_to_beat_control: None,
            risk: None,
            verdict: uplift.map(|_| verdict),
            error: None,
        }
    }

    #[test]
    fn the_uplift_timeline_leaves_a_gap_where_no_comparison_could_be_made() {
        use liftoff_core::experiments::results::TimelinePoint;
        let at = |h: i64| chrono::DateTime::from_timestamp(1_700_000_000 + h * 3600, 0).unwrap();
        let mut failed = row("b", Some((0.0, 0.0, 0.0)), "flat");
        failed.error = Some("ZERO_NEGATIVE_BASELINE_VARIATION".into());
        let t = Timeline {
            experiment: "e".into(),
            metric: "conversion:buy".into(),
            points: vec![
                TimelinePoint {
                    at: at(0),
                    variants: vec![row("a", None, ""), failed],
                },
                TimelinePoint {
                    at: at(1),
                    variants: vec![
                        row("a", None, ""),
                        row("b", Some((0.1234, -0.05, 0.3)), "flat"),
                    ],
                },
            ],
        };
        let html = timeline_chart(&t, "a").into_string();
        let spec = html
            .split("data-chart=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        let spec: serde_json::Value = serde_json::from_str(&spec.replace("&quot;", "\"")).unwrap();
        assert_eq!(spec["series"][0], "b uplift %");
        assert_eq!(spec["data"][1], serde_json::json!([null, 12.34]));
        assert_eq!(spec["data"][2], serde_json::json!([null, -5.0]));
        assert_eq!(spec["bounds"], serde_json::json!([1, 2]));
        // Nothing to draw: no chart at all.
        let empty = Timeline {
            points: t.points[..1].to_vec(),
            ..t
        };
        assert_eq!(timeline_chart(&empty, "a").into_string(), "");
    }

    #[test]
    fn the_interval_chart_draws_each_treatment_around_zero_by_verdict() {
        let m = MetricResult {
            metric: "conversion:<buy>".into(),
            kind: MetricKind::Conversion,
            higher_is_better: true,
            variants: vec![
                row("control", None, "flat"),
                row("<b>", Some((0.2, 0.1, 0.3)), "better"),
                row("c", Some((-0.05, -0.2, 0.1)), "flat"),
                row("d", Some((f64::NAN, f64::NAN, f64::NAN)), "flat"),
            ],
            unavailable: None,
        };
        let svg = ci_chart(&m).into_string();
        assert!(svg.contains(r#"class="ci-row ci-better""#), "{svg}");
        assert!(svg.contains(r#"class="ci-row ci-flat""#), "{svg}");
        assert_eq!(
            svg.matches("<rect").count(),
            2,
            "no bar without an interval: {svg}"
        );
        assert_eq!(
            svg.matches("<rect").count(),
            svg.matches("</rect>").count(),
            "SVG shapes are closed, or the HTML parser nests what follows inside them"
        );
        assert!(svg.contains("&lt;b&gt;") && !svg.contains("<b>"), "{svg}");
        assert!(svg.contains("conversion:&lt;buy&gt;"), "{svg}");
        // The control has no interval: nothing to draw.
        let only_control = MetricResult {
            variants: vec![row("control", None, "flat")],
            ..m
        };
        assert_eq!(ci_chart(&only_control).into_string(), "");
    }

    #[test]
    fn numbers_read_in_their_unit() {
        assert_eq!(signed_percent(0.123), "+12.3\u{a0}%");
        assert_eq!(signed_percent(-0.05), "-5.0\u{a0}%");
        assert_eq!(signed_percent(f64::INFINITY), "—");
        assert_eq!(metric_value(MetricKind::Conversion, 0.25), "25.0\u{a0}%");
        assert_eq!(metric_value(MetricKind::Mean, 12.3456), "12.35");
        assert_eq!(metric_value(MetricKind::LatencyP95, 212.4), "212\u{a0}ms");
        assert_eq!(p_value(0.00001), "< 0.0001");
        assert_eq!(p_value(0.04321), "0.0432");
        assert_eq!(share(0.95), "95\u{a0}%");
        assert_eq!(share(0.975), "97.5\u{a0}%");
    }
}
