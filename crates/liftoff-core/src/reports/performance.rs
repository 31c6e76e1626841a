//! The performance trend and capacity report of a month: weekly averages with their change,
//! a trend verdict from the least-squares fit of daily averages (its slope's significance, not
//! eyeballing), optimisation opportunities ranked by the time they would save, capacity now,
//! the peak projected at 3 and 6 months by the same growth fit `/api/launch/scaling` uses,
//! and the cost with and without the optimisations.

use chrono::{DateTime, Duration, Utc};
use liftoff_report::numbers::{count, ms, or_dash, share, signed_percent};
use liftoff_report::{Block, Cell, Chart, ChartKind, Column, Document, Series, Table, Tone};
use serde::Serialize;
use utoipa::ToSchema;

use super::targets::Targets;
use super::{ReportError, Sources, period};
use crate::launch::scaling::{
    GrowthFit, ScalingReport, TARGET_UTILISATION, TrendVerdict, fit_growth, trend_verdict,
};
use crate::monitoring::filter::Filter;
use crate::monitoring::service::TimeRange;

/// Opportunities listed.
const OPPORTUNITIES: usize = 5;
/// Months ahead the capacity is projected for.
const HORIZON_DAYS: [u32; 2] = [90, 180];

#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct WeekLatency {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub requests: u64,
    pub avg_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    /// Against the week before, in milliseconds and relative (0.1 = 10 % slower).
    pub change_ms: Option<f64>,
    pub change: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct DayLatency {
    pub day: DateTime<Utc>,
    pub requests: u64,
    pub avg_ms: Option<f64>,
}

/// The verdict on the daily averages' fitted line.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct LatencyTrend {
    pub verdict: TrendVerdict,
    /// The fit of `ln(average)` on the day; `null` with fewer than 7 days of traffic.
    pub fit: Option<GrowthFit>,
    /// Relative change a week by the fitted line (0.06 = 6 % slower each week).
    pub weekly_change: Option<f64>,
    pub p_value: Option<f64>,
}

/// An endpoint slower than the average target, and what bringing it there would save.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Opportunity {
    pub method: String,
    pub endpoint: String,
    pub requests: u64,
    pub avg_ms: f64,
    pub p95_ms: f64,
    /// Per request, down to the target average.
    pub saved_ms_per_request: f64,
    /// Requests × time saved: the ranking, in hours over the window.
    pub hours_saved: f64,
    pub suggestion: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Capacity {
    /// Instances reporting their resources now (this server when none does).
    pub instances: u32,
    /// The busiest hour's request rate in the window.
    pub peak_rps: f64,
    /// The highest CPU and memory use among the instances now, percent.
    pub cpu_percent: f64,
    pub memory_percent: f64,
}

/// Instances and cost at a horizon.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct CapacityStep {
    pub days_ahead: u32,
    pub peak_rps: f64,
    /// Instances that keep the busiest resource under 70 % at that peak.
    pub instances: u32,
    /// The same after the opportunities (work per request falls with the time saved).
    pub instances_optimised: u32,
    /// With `--instance-monthly-cost`.
    pub monthly_cost: Option<f64>,
    pub monthly_cost_optimised: Option<f64>,
}

/// `GET /api/reports/performance`.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct PerformanceReport {
    pub generated_at: DateTime<Utc>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub weeks: Vec<WeekLatency>,
    pub daily: Vec<DayLatency>,
    pub trend: LatencyTrend,
    pub opportunities: Vec<Opportunity>,
    /// Fraction 0–1 of all request time the opportunities would save.
    pub time_saved_share: f64,
    pub capacity: Capacity,
    /// What `/api/launch/scaling` answers at the window's end.
    pub scaling: ScalingReport,
    pub steps: Vec<CapacityStep>,
    /// With `--instance-monthly-cost`: the cost now.
    pub monthly_cost_now: Option<f64>,
}

impl Sources<'_> {
    pub async fn performance_report(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        targets: &Targets,
        instance_monthly_cost: Option<f64>,
    ) -> Result<PerformanceReport, ReportError> {
        let now = self.now();
        let end = to.min(now);
        let apps = Filter::default();
        // Weeks from `from`; the last may be shorter.
        let mut weeks = Vec::new();
        let mut start = from;
        while start < end {
            let stop = (start + Duration::days(7)).min(end);
            let s = self
                .monitoring
                .summary(
                    TimeRange {
                        from: start,
                        to: stop,
                    },
                    &apps,
                )
                .await?;
            let has = s.requests.total > 0;
            weeks.push(WeekLatency {
                from: start,
                to: stop,
                requests: s.requests.total,
                avg_ms: has.then_some(s.performance.avg_duration_ms),
                p95_ms: has.then_some(s.performance.p95_duration_ms),
                change_ms: None,
                change: None,
            });
            start = stop;
        }
        for i in 1..weeks.len() {
            if let (Some(a), Some(b)) = (weeks[i].avg_ms, weeks[i - 1].avg_ms) {
                weeks[i].change_ms = Some(a - b);
                weeks[i].change = (b > 0.0).then(|| (a - b) / b);
            }
        }
        let mut daily = Vec::new();
        let mut day = from;
        while day < end {
            let next = (day + Duration::days(1)).min(end);
            let s = self
                .monitoring
                .summary(
                    TimeRange {
                        from: day,
                        to: next,
                    },
                    &apps,
                )
                .await?;
            daily.push(DayLatency {
                day,
                requests: s.requests.total,
                avg_ms: (s.requests.total > 0).then_some(s.performance.avg_duration_ms),
            });
            day = next;
        }
        let points: Vec<(i64, f64)> = daily
            .iter()
            .enumerate()
            .filter_map(|(i, d)| Some((i as i64, d.avg_ms?)))
            .collect();
        let fit = fit_growth(&points);
        let trend = LatencyTrend {
            verdict: fit
                .as_ref()
                .map_or(TrendVerdict::Stable, |f| trend_verdict(f, true)),
            weekly_change: fit.as_ref().map(|f| f.weekly_growth),
            p_value: fit.as_ref().map(|f| f.slope_p_value),
            fit,
        };

        let range = TimeRange { from, to: end };
        let endpoints = self.monitoring.performance(range, &apps).await?;
        let total_ms: f64 = endpoints
            .values()
            .map(|e| e.request_count as f64 * e.duration_ms.avg)
            .sum();
        let mut opportunities: Vec<Opportunity> = endpoints
            .values()
            .filter(|e| e.request_count > 0 && e.duration_ms.avg > targets.avg_response_time_ms)
            .map(|e| {
                let saved = e.duration_ms.avg - targets.avg_response_time_ms;
                Opportunity {
                    method: e.method.clone(),
                    endpoint: e.endpoint.clone(),
                    requests: e.request_count,
                    avg_ms: e.duration_ms.avg,
                    p95_ms: e.duration_ms.p95,
                    saved_ms_per_request: saved,
                    hours_saved: e.request_count as f64 * saved / 3_600_000.0,
                    suggestion: if e.method == "GET" {
                        "Cache the answer or index what it reads.".into()
                    } else {
                        "Profile the handler; move slow work off the request.".into()
                    },
                }
            })
            .collect();
        opportunities.sort_by(|a, b| b.hours_saved.total_cmp(&a.hours_saved));
        opportunities.truncate(OPPORTUNITIES);
        let saved_ms: f64 = opportunities
            .iter()
            .map(|o| o.hours_saved * 3_600_000.0)
            .sum();
        let time_saved_share = if total_ms > 0.0 {
            saved_ms / total_ms
        } else {
            0.0
        };

        let hours = usize::try_from((end - from).num_hours().max(1)).unwrap_or(1);
        let (series, scaling) = tokio::join!(
            self.monitoring.series(range, hours, &apps),
            self.scaling(end, instance_monthly_cost),
        );
        let series = series?;
        let scaling = scaling?;
        let step_seconds =
            ((end - from).num_seconds() as f64 / series.len().max(1) as f64).max(60.0);
        let peak_rps = series
            .iter()
            .map(|p| p.requests as f64 / step_seconds)
            .fold(0.0, f64::max);
        let instances = self.monitoring.instances.list(now);
        let (mut cpu, mut memory) = instances.iter().fold((0.0f64, 0.0f64), |(c, m), i| {
            (c.max(i.sample.cpu.percent), m.max(i.sample.memory.percent))
        });
        if instances.is_empty() {
            let own = self.monitoring.system.get();
            cpu = own.cpu.percent;
            memory = own.memory.percent;
        }
        let capacity = Capacity {
            instances: u32::try_from(instances.len().max(1)).unwrap_or(u32::MAX),
            peak_rps,
            cpu_percent: cpu,
            memory_percent: memory,
        };
        let busiest = cpu.max(memory) / 100.0;
        let steps = HORIZON_DAYS
            .iter()
            .map(|&days| {
                let growth = scaling
                    .fit
                    .as_ref()
                    .map_or(1.0, |f| f.ahead(f64::from(days)) / f.ahead(0.0));
                let needed = |work: f64| -> u32 {
                    let load = f64::from(capacity.instances) * busiest * growth * work;
                    ((load / TARGET_UTILISATION).ceil() as u32).max(1)
                };
                let (plain, optimised) = (needed(1.0), needed(1.0 - time_saved_share));
                // The fitted daily peak `/api/launch/scaling` projects; without a fit, today's.
                let projected = scaling
                    .projections
                    .iter()
                    .find(|p| p.days_ahead == days)
                    .map_or(peak_rps, |p| p.peak_rps);
                CapacityStep {
                    days_ahead: days,
                    peak_rps: projected,
                    instances: plain,
                    instances_optimised: optimised,
                    monthly_cost: instance_monthly_cost.map(|c| c * f64::from(plain)),
                    monthly_cost_optimised: instance_monthly_cost.map(|c| c * f64::from(optimised)),
                }
            })
            .collect();
        Ok(PerformanceReport {
            generated_at: now,
            from,
            to,
            weeks,
            daily,
            trend,
            opportunities,
            time_saved_share,
            monthly_cost_now: instance_monthly_cost.map(|c| c * f64::from(capacity.instances)),
            capacity,
            scaling,
            steps,
        })
    }
}

fn money(v: f64) -> String {
    format!("{} / month", count(v.round().max(0.0) as u64))
}

impl PerformanceReport {
    pub fn document(&self) -> Document {
        let mut blocks = vec![Block::Heading {
            text: "Weekly response times".into(),
        }];
        blocks.push(Block::Table(Table {
            columns: vec![
                Column::left("Week"),
                Column::right("Requests"),
                Column::right("Average"),
                Column::right("p95"),
                Column::right("Change"),
            ],
            rows: self
                .weeks
                .iter()
                .map(|w| {
                    vec![
                        format!("{} – {}", w.from.format("%m-%d"), w.to.format("%m-%d")).into(),
                        count(w.requests).into(),
                        or_dash(w.avg_ms, ms).into(),
                        or_dash(w.p95_ms, ms).into(),
                        match (w.change_ms, w.change) {
                            (Some(d), Some(r)) => format!("{d:+.1} ms ({})", signed_percent(r)),
                            _ => "–".to_owned(),
                        }
                        .into(),
                    ]
                })
                .collect(),
            empty: "No requests in this period.".into(),
        }));
        if self.daily.len() > 1 {
            blocks.push(Block::Chart(Chart {
                title: "Average response time per day".into(),
                kind: ChartKind::Line,
                unit: "ms".into(),
                x_labels: self
                    .daily
                    .iter()
                    .map(|d| d.day.format("%m-%d").to_string())
                    .collect(),
                series: vec![Series {
                    name: "Average".into(),
                    values: self.daily.iter().map(|d| d.avg_ms).collect(),
                }],
            }));
        }
        let t = &self.trend;
        let (tone, word) = match t.verdict {
            TrendVerdict::Improving => (Tone::Good, "improving"),
            TrendVerdict::Stable => (Tone::Neutral, "stable"),
            TrendVerdict::Degrading => (Tone::Bad, "degrading"),
        };
        blocks.push(Block::Heading {
            text: "Trend".into(),
        });
        blocks.push(Block::Callout {
            tone,
            title: format!("Response times are {word}"),
            text: match (&t.fit, t.weekly_change, t.p_value) {
                (Some(f), Some(w), Some(p)) => format!(
                    "The least-squares line through {} daily averages moves {} a week (p = {p:.3}, R² {:.2}). \
                     A trend needs p < 0.05 and at least 2 % a week.",
                    f.days,
                    signed_percent(w),
                    f.r_squared
                ),
                _ => "Fewer than 7 days with traffic: no trend can be told yet.".into(),
            },
        });
        blocks.push(Block::Heading {
            text: "Optimisation opportunities".into(),
        });
        blocks.push(Block::Table(Table {
            columns: vec![
                Column::left("Endpoint"),
                Column::right("Requests"),
                Column::right("Average"),
                Column::right("p95"),
                Column::right("Saved each"),
                Column::right("Hours saved"),
                Column::left("Suggestion"),
            ],
            rows: self
                .opportunities
                .iter()
                .map(|o| {
                    vec![
                        format!("{} {}", o.method, o.endpoint).into(),
                        count(o.requests).into(),
                        ms(o.avg_ms).into(),
                        ms(o.p95_ms).into(),
                        ms(o.saved_ms_per_request).into(),
                        format!("{:.1}", o.hours_saved).into(),
                        o.suggestion.as_str().into(),
                    ]
                })
                .collect(),
            empty: "Every endpoint's average is within the target.".into(),
        }));
        if !self.opportunities.is_empty() {
            blocks.push(Block::Paragraph {
                text: format!(
                    "Together they would save {} of all request time.",
                    share(self.time_saved_share)
                ),
            });
        }
        let c = &self.capacity;
        blocks.push(Block::Heading {
            text: "Capacity".into(),
        });
        blocks.push(Block::Table(Table {
            columns: vec![Column::left("Measure"), Column::right("Now")],
            rows: vec![
                vec!["Instances".into(), c.instances.to_string().into()],
                vec![
                    "Busiest hour, requests per second".into(),
                    format!("{:.1}", c.peak_rps).into(),
                ],
                vec![
                    "Busiest CPU".into(),
                    format!("{:.0} %", c.cpu_percent).into(),
                ],
                vec![
                    "Busiest memory".into(),
                    format!("{:.0} %", c.memory_percent).into(),
                ],
                vec!["Cost".into(), or_dash(self.monthly_cost_now, money).into()],
            ],
            empty: String::new(),
        }));
        blocks.push(Block::Subheading {
            text: "Projected".into(),
        });
        blocks.push(Block::Paragraph {
            text: "Peaks from the growth fitted on the last 28 days' daily peaks (the launch's \
                   scaling advice uses the same fit); instances keep the busiest resource under \
                   70 %, and the optimised count assumes work per request falls with the time \
                   the opportunities save."
                .into(),
        });
        blocks.push(Block::Table(Table {
            columns: vec![
                Column::left("Horizon"),
                Column::right("Peak req/s"),
                Column::right("Instances"),
                Column::right("Optimised"),
                Column::right("Cost"),
                Column::right("Cost optimised"),
            ],
            rows: self
                .steps
                .iter()
                .map(|s| {
                    let more = s.instances > c.instances;
                    vec![
                        format!("{} months", s.days_ahead / 30).into(),
                        format!("{:.1}", s.peak_rps).into(),
                        if more {
                            Cell::toned(s.instances.to_string(), Tone::Warning)
                        } else {
                            Cell::from(s.instances.to_string())
                        },
                        s.instances_optimised.to_string().into(),
                        or_dash(s.monthly_cost, money).into(),
                        or_dash(s.monthly_cost_optimised, money).into(),
                    ]
                })
                .collect(),
            empty: String::new(),
        }));
        blocks.push(Block::Subheading {
            text: "Scaling steps".into(),
        });
        blocks.push(Block::Bullets {
            items: self
                .scaling
                .recommendations
                .iter()
                .map(|r| r.message.clone())
                .collect(),
        });
        Document {
            title: "Performance trend and capacity report".into(),
            subtitle: period(self.from, self.to, self.generated_at),
            blocks,
        }
    }

    pub fn summary(&self) -> String {
        let word = match self.trend.verdict {
            TrendVerdict::Improving => "improving",
            TrendVerdict::Stable => "stable",
            TrendVerdict::Degrading => "degrading",
        };
        format!(
            "Response times {word}; {} opportunities would save {} of request time; peak {:.1} req/s.",
            self.opportunities.len(),
            share(self.time_saved_share),
            self.capacity.peak_rps
        )
    }
}
