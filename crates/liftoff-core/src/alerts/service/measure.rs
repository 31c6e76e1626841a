//! Measuring: the value a rule's metric has over its window.

use super::*;

impl AlertsService {
    pub(super) async fn error_rate(
        &self,
        scope: &RuleScope,
        range: TimeRange,
    ) -> Result<Option<f64>, StoreError> {
        let filter = Filter::new(scope.service.as_deref(), scope.endpoint.as_deref());
        let s = self.monitoring.summary(range, &filter).await?;
        Ok((s.requests.total > 0).then_some(s.requests.error_rate))
    }

    /// The value a rule compares at `now`; `None` when there is no data.
    pub async fn measure(
        &self,
        rule: &Rule,
        now: DateTime<Utc>,
        monitors: &[MonitorHealth],
    ) -> Result<Option<f64>, StoreError> {
        let range = TimeRange {
            from: now - Duration::seconds(WINDOW),
            to: now,
        };
        let s = &rule.scope;
        Ok(match rule.metric {
            Metric::ErrorRate => self.error_rate(s, range).await?,
            Metric::LatencyP50 | Metric::LatencyP95 | Metric::LatencyP99 => {
                let pick = |p50: f64, p95: f64, p99: f64| match rule.metric {
                    Metric::LatencyP50 => p50,
                    Metric::LatencyP95 => p95,
                    _ => p99,
                };
                let filter = Filter::new(s.service.as_deref(), s.endpoint.as_deref());
                if s.service.is_none() && s.endpoint.is_none() {
                    self.monitoring
                        .series(range, 1, &filter)
                        .await?
                        .into_iter()
                        .filter(|p| p.requests > 0)
                        .find_map(|p| Some(pick(p.p50?, p.p95?, p.p99?)))
                } else {
                    // Per endpoint; a service scope looks at its slowest endpoint.
                    let per = self.monitoring.performance(range, &filter).await?;
                    max_of(per.values().filter(|e| e.request_count > 0).map(|e| {
                        let d = &e.duration_ms;
                        Some(pick(d.p50, d.p95, d.p99))
                    }))
                }
            }
            Metric::SuccessRate | Metric::CacheHitRate | Metric::FallbackRate => {
                let ops = self
                    .operations
                    .operations(range, s.operation.as_deref(), s.service.as_deref(), None)
                    .await?;
                match rule.metric {
                    Metric::SuccessRate => sum_rate(ops.values().map(|o| (o.successes, o.count))),
                    Metric::CacheHitRate => max_of(ops.values().map(|o| o.cache_hit_rate))
                        .filter(|_| ops.len() == 1)
                        .or_else(|| {
                            // Several operations: the lowest hit rate is the one to watch.
                            ops.values()
                                .filter_map(|o| o.cache_hit_rate)
                                .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.min(v))))
                        }),
                    _ => max_of(ops.values().map(|o| o.fallback_rate)),
                }
            }
            Metric::CpuPercent | Metric::MemoryPercent | Metric::DiskPercent => {
                let snap = self.monitoring.system.get();
                snap.sampled_at.map(|_| match rule.metric {
                    Metric::CpuPercent => snap.cpu.percent,
                    Metric::MemoryPercent => snap.memory.percent,
                    _ => snap.disk.percent,
                })
            }
            Metric::RolloutRegressions => match &self.rollouts {
                None => None,
                Some(r) => Some(
                    r.regressions_since(now - Duration::minutes(15))
                        .await?
                        .len() as f64,
                ),
            },
            Metric::DeploymentRegression => match &self.deployments {
                None => None,
                Some(d) => Some(d.regressed_since(now - Duration::hours(2)).await? as f64),
            },
            Metric::UptimeFailing => {
                if self.uptime.is_none() {
                    None
                } else if let Some(id) = s.monitor {
                    monitors
                        .iter()
                        .find(|m| m.id == id)
                        .map(|m| if m.failing { 1.0 } else { 0.0 })
                } else {
                    Some(monitors.iter().filter(|m| m.failing).count() as f64)
                }
            }
            Metric::EventCount => match &self.events {
                None => None,
                Some(events) => {
                    let days = WINDOW as f64 / 86_400.0;
                    let top = events
                        .features(days, 1000, now.timestamp_millis())
                        .await
                        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
                    Some(match &s.event {
                        Some(name) => top
                            .features
                            .iter()
                            .find(|f| &f.feature == name)
                            .map_or(0.0, |f| f.usage_count as f64),
                        None => top.features.iter().map(|f| f.usage_count as f64).sum(),
                    })
                }
            },
            Metric::SloBurnRate => {
                let Some(slo) = rule.slo else { return Ok(None) };
                let (_, long, short) = slo.preset.windows();
                let budget = 1.0 - slo.objective;
                let mut burns = Vec::with_capacity(2);
                for w in [long, short] {
                    let r = TimeRange {
                        from: now - Duration::seconds(w),
                        to: now,
                    };
                    burns.push(self.error_rate(s, r).await?.map(|e| e / budget));
                }
                // Both windows must exceed the factor: compare the smaller.
                match (burns[0], burns[1]) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    _ => None,
                }
            }
        })
    }
}
