//! Release verification: CI pipelines record deployments (`POST /api/deployments`), and each
//! is verified by comparing the service's error rate and p95 latency in the `verify_minutes`
//! after it with the same span before, with a test of the difference. A regression is an
//! alert like any other (`deployment_regression`).

mod store;

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use store::DeploymentStore;

use crate::audit::Change;
use crate::auth::Actor;
use crate::clock::{self, Clock};
use crate::experiments::stats::{self, Statistic};
use crate::monitoring::variants::VariantTraffic;
use crate::monitoring::{Filter, MonitoringService, TimeRange};
use crate::store::StoreError;

pub const DEFAULT_VERIFY_MINUTES: u32 = 30;
/// A difference counts as a regression below this two-sided p-value.
pub const ALPHA: f64 = 0.05;
/// Fewer requests than this on either side: no verdict.
pub const MIN_REQUESTS: u64 = 100;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Deployment {
    pub id: i64,
    pub service: String,
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub deployed_at: DateTime<Utc>,
    pub verify_minutes: u32,
    pub recorded_by: String,
}

/// `POST /api/deployments`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDeployment {
    /// The service as request metrics name it.
    #[schema(min_length = 1, max_length = 100)]
    pub service: String,
    #[schema(min_length = 1, max_length = 100)]
    pub version: String,
    #[schema(max_length = 50)]
    pub environment: Option<String>,
    #[schema(max_length = 100)]
    pub commit: Option<String>,
    #[schema(max_length = 2000)]
    pub description: Option<String>,
    /// [default now] At most a day back and five minutes ahead.
    pub deployed_at: Option<DateTime<Utc>>,
    /// Minutes compared after (and before) the deployment. [default 30]
    #[schema(minimum = 1, maximum = 1440)]
    pub verify_minutes: Option<u32>,
}

fn field(name: &str, v: Option<String>, max: usize) -> Result<Option<String>, String> {
    match v.map(|s| s.trim().to_owned()) {
        Some(s) if s.is_empty() => Ok(None),
        Some(s) if s.chars().count() > max || s.chars().any(char::is_control) => {
            Err(format!("{name} must be at most {max} printable characters"))
        }
        other => Ok(other),
    }
}

impl NewDeployment {
    pub fn validate(self, by: &str, now: DateTime<Utc>) -> Result<Deployment, String> {
        let service = field("service", Some(self.service), 100)?
            .ok_or("service must not be empty (name it as request metrics do)")?;
        let version =
            field("version", Some(self.version), 100)?.ok_or("version must not be empty")?;
        let deployed_at = self.deployed_at.unwrap_or(now);
        if deployed_at < now - Duration::days(1) || deployed_at > now + Duration::minutes(5) {
            return Err("deployed_at must be within the last day (and not in the future)".into());
        }
        let verify_minutes = self.verify_minutes.unwrap_or(DEFAULT_VERIFY_MINUTES);
        if !(1..=1440).contains(&verify_minutes) {
            return Err("verify_minutes must be 1 to 1440".into());
        }
        Ok(Deployment {
            id: 0,
            service,
            version,
            environment: field("environment", self.environment, 50)?,
            commit: field("commit", self.commit, 100)?,
            description: field("description", self.description, 2000)?,
            deployed_at,
            verify_minutes,
            recorded_by: by.to_owned(),
        })
    }
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Side {
    pub requests: u64,
    /// A fraction.
    pub error_rate: f64,
    pub p95_ms: Option<f64>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Difference {
    /// After − before (fraction for the error rate, ms for p95).
    pub absolute: f64,
    pub relative: f64,
    /// Two-sided Welch test of the absolute difference (p95 from its order-statistic interval).
    pub p_value: f64,
    pub regressed: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VerificationStatus {
    /// The window after the deployment has not passed yet (and nothing regressed so far).
    Pending,
    Passed,
    Regressed,
    /// Too few requests on one side to judge.
    NoData,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Verification {
    pub deployment: Deployment,
    pub before: Side,
    pub after: Side,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_rate: Option<Difference>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_p95: Option<Difference>,
    pub status: VerificationStatus,
    pub why: String,
}

fn side(t: &VariantTraffic) -> Side {
    Side {
        requests: t.requests,
        error_rate: if t.requests == 0 {
            0.0
        } else {
            t.failed as f64 / t.requests as f64
        },
        p95_ms: t.latency.quantile(0.95),
    }
}

/// Welch's two-sided test on the absolute difference (a relative test loses most of its power
/// when the baseline error rate is near zero, which is the usual case before a deploy).
fn difference(before: &Statistic, after: &Statistic) -> Difference {
    use statrs::distribution::{ContinuousCDF, StudentsT};
    let (na, nb) = (before.n(), after.n());
    let (va, vb) = (before.variance(), after.variance());
    let absolute = after.mean() - before.mean();
    let relative = if before.mean() == 0.0 {
        0.0
    } else {
        absolute / before.mean()
    };
    let se2 = va / na + vb / nb;
    let p_value = if na > 1.0 && nb > 1.0 && se2 > 0.0 {
        let dof = se2.powi(2) / ((va / na).powi(2) / (na - 1.0) + (vb / nb).powi(2) / (nb - 1.0));
        let t = absolute / se2.sqrt();
        StudentsT::new(0.0, 1.0, dof.max(1.0))
            .map(|d| 2.0 * d.sf(t.abs()))
            .unwrap_or(1.0)
    } else {
        1.0
    };
    Difference {
        absolute,
        relative,
        p_value,
        regressed: absolute > 0.0 && p_value < ALPHA,
    }
}

/// The verdict on `before` and `after` (pure).
pub fn verify(
    deployment: Deployment,
    before: &VariantTraffic,
    after: &VariantTraffic,
    now: DateTime<Utc>,
) -> Verification {
    let ended =
        now >= deployment.deployed_at + Duration::minutes(i64::from(deployment.verify_minutes));
    let enough = before.requests >= MIN_REQUESTS && after.requests >= MIN_REQUESTS;
    let (error_rate, latency_p95) = if enough {
        let proportion = |t: &VariantTraffic| Statistic::Proportion {
            n: t.requests as f64,
            sum: t.failed as f64,
        };
        (
            Some(difference(&proportion(before), &proportion(after))),
            Some(difference(
                &stats::quantile_statistic(&before.latency, 0.95),
                &stats::quantile_statistic(&after.latency, 0.95),
            )),
        )
    } else {
        (None, None)
    };
    let (b, a) = (side(before), side(after));
    let regressed: Vec<String> = [
        error_rate.as_ref().filter(|d| d.regressed).map(|d| {
            format!(
                "error rate {:.2} % → {:.2} % (p = {:.4})",
                b.error_rate * 100.0,
                a.error_rate * 100.0,
                d.p_value
            )
        }),
        latency_p95.as_ref().filter(|d| d.regressed).map(|d| {
            format!(
                "p95 {:.0} ms → {:.0} ms (p = {:.4})",
                b.p95_ms.unwrap_or(0.0),
                a.p95_ms.unwrap_or(0.0),
                d.p_value
            )
        }),
    ]
    .into_iter()
    .flatten()
    .collect();
    let (status, why) = if !regressed.is_empty() {
        (
            VerificationStatus::Regressed,
            format!(
                "{} {} regressed: {}",
                deployment.service,
                deployment.version,
                regressed.join("; ")
            ),
        )
    } else if !enough {
        (
            VerificationStatus::NoData,
            format!(
                "{} requests before and {} after; at least {MIN_REQUESTS} on each side are needed",
                b.requests, a.requests
            ),
        )
    } else if !ended {
        (
            VerificationStatus::Pending,
            format!(
                "no regression so far; the {}-minute window ends at {}",
                deployment.verify_minutes,
                (deployment.deployed_at + Duration::minutes(i64::from(deployment.verify_minutes)))
                    .format("%H:%M UTC")
            ),
        )
    } else {
        (
            VerificationStatus::Passed,
            format!(
                "error rate and p95 did not get significantly worse in the {} minutes after",
                deployment.verify_minutes
            ),
        )
    };
    Verification {
        deployment,
        before: b,
        after: a,
        error_rate,
        latency_p95,
        status,
        why,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DeploymentError {
    #[error("no deployment {0}")]
    NotFound(i64),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Clone)]
pub struct DeploymentService {
    store: Arc<dyn DeploymentStore>,
    monitoring: MonitoringService,
    clock: Arc<dyn Clock>,
}

impl DeploymentService {
    pub fn new(store: Arc<dyn DeploymentStore>, monitoring: MonitoringService) -> Self {
        Self {
            store,
            monitoring,
            clock: clock::system(),
        }
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub async fn record(
        &self,
        by: &Actor,
        new: NewDeployment,
    ) -> Result<Deployment, DeploymentError> {
        let d = new
            .validate(&by.to_string(), self.clock.now())
            .map_err(DeploymentError::Invalid)?;
        let mut change = Change::new(by, "deployment.create", "deployment", "");
        change.after = serde_json::to_value(&d).ok();
        Ok(self.store.create_deployment(&d, &change).await?)
    }

    /// Newest first.
    pub async fn list(&self, limit: u32) -> Result<Vec<Deployment>, DeploymentError> {
        if !(1..=1000).contains(&limit) {
            return Err(DeploymentError::Invalid("limit must be 1 to 1000".into()));
        }
        Ok(self.store.list_deployments(limit).await?)
    }

    pub async fn verification(&self, id: i64) -> Result<Verification, DeploymentError> {
        let d = self
            .store
            .get_deployment(id)
            .await?
            .ok_or(DeploymentError::NotFound(id))?;
        self.verify(d).await
    }

    async fn verify(&self, d: Deployment) -> Result<Verification, DeploymentError> {
        let now = self.clock.now();
        let span = Duration::minutes(i64::from(d.verify_minutes));
        let filter = Filter::new(Some(&d.service), None);
        let before = self
            .monitoring
            .traffic(
                TimeRange {
                    from: d.deployed_at - span,
                    to: d.deployed_at,
                },
                &filter,
            )
            .await?;
        let after = self
            .monitoring
            .traffic(
                TimeRange {
                    from: d.deployed_at,
                    to: (d.deployed_at + span).min(now),
                },
                &filter,
            )
            .await?;
        Ok(verify(d, &before, &after, now))
    }

    /// Deployments of the last `hours` whose verification says regressed (the
    /// `deployment_regression` alert metric).
    pub async fn regressed_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<Verification>, StoreError> {
        let mut out = Vec::new();
        for d in self.store.list_deployments(200).await? {
            if d.deployed_at < since {
                continue;
            }
            match self.verify(d).await {
                Ok(v) if v.status == VerificationStatus::Regressed => out.push(v),
                Ok(_) => {}
                Err(DeploymentError::Store(e)) => return Err(e),
                Err(_) => {}
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitoring::sketch::DDSketch;

    fn traffic(requests: u64, failed: u64, ms: f64) -> VariantTraffic {
        let mut latency = DDSketch::default();
        for i in 0..requests {
            latency.add(ms + (i % 10) as f64);
        }
        VariantTraffic {
            requests,
            failed,
            latency,
        }
    }

    fn deployment(at: DateTime<Utc>) -> Deployment {
        NewDeployment {
            service: "shop".into(),
            version: "1.4.0".into(),
            environment: None,
            commit: None,
            description: None,
            deployed_at: Some(at),
            verify_minutes: None,
        }
        .validate("ci", at)
        .unwrap()
    }

    #[test]
    fn a_worse_error_rate_after_the_deploy_is_a_regression_and_a_same_one_passes() {
        let at = Utc::now() - Duration::hours(1);
        let v = verify(
            deployment(at),
            &traffic(5000, 50, 40.0),
            &traffic(5000, 150, 40.0),
            Utc::now(),
        );
        assert_eq!(v.status, VerificationStatus::Regressed, "{}", v.why);
        assert!(v.why.contains("error rate 1.00 % → 3.00 %"), "{}", v.why);
        let v = verify(
            deployment(at),
            &traffic(5000, 50, 40.0),
            &traffic(5000, 52, 40.0),
            Utc::now(),
        );
        assert_eq!(v.status, VerificationStatus::Passed, "{}", v.why);
        let v = verify(
            deployment(at),
            &traffic(5000, 50, 40.0),
            &traffic(5000, 50, 80.0),
            Utc::now(),
        );
        assert_eq!(v.status, VerificationStatus::Regressed, "slower: {}", v.why);
        let v = verify(
            deployment(Utc::now()),
            &traffic(5000, 50, 40.0),
            &traffic(500, 5, 40.0),
            Utc::now(),
        );
        assert_eq!(v.status, VerificationStatus::Pending);
        let v = verify(
            deployment(at),
            &traffic(10, 0, 40.0),
            &traffic(5000, 5, 40.0),
            Utc::now(),
        );
        assert_eq!(v.status, VerificationStatus::NoData);
    }

    #[test]
    fn bad_deployments_are_refused() {
        let now = Utc::now();
        let base = || NewDeployment {
            service: "shop".into(),
            version: "1".into(),
            environment: None,
            commit: None,
            description: None,
            deployed_at: None,
            verify_minutes: None,
        };
        assert!(
            NewDeployment {
                service: " ".into(),
                ..base()
            }
            .validate("ci", now)
            .is_err()
        );
        assert!(
            NewDeployment {
                verify_minutes: Some(0),
                ..base()
            }
            .validate("ci", now)
            .is_err()
        );
        assert!(
            NewDeployment {
                deployed_at: Some(now - Duration::days(2)),
                ..base()
            }
            .validate("ci", now)
            .is_err()
        );
        assert!(
            NewDeployment {
                commit: Some("a\nb".into()),
                ..base()
            }
            .validate("ci", now)
            .is_err()
        );
        assert!(base().validate("ci", now).is_ok());
    }
}
