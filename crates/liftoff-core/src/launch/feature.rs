//! `GET /api/launch/feature/{feature}`: whether a launch feature is on for a user. A feature
//! is a flag; a beta feature is on only for users holding a seat of the soft-launch cap.

use serde::Serialize;
use utoipa::ToSchema;

use super::service::{LaunchError, LaunchService, user_id};
use crate::flags::{Environment, FlagService, context};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct FeatureAnswer {
    pub feature: String,
    pub enabled: bool,
    /// Whether the launch lists it as a beta feature.
    pub beta: bool,
    pub reason: String,
}

/// The answer for `feature` and `user` (asking does not take a seat: it reads admission).
pub async fn feature_for(
    launch: &LaunchService,
    flags: &FlagService,
    feature: &str,
    user: Option<&str>,
) -> Result<FeatureAnswer, LaunchError> {
    let user = user.map(user_id).transpose()?;
    let settings = launch.settings().await?;
    let beta = settings.beta_features.iter().any(|f| f == feature);
    let catalog = flags.catalog();
    let e = catalog.evaluate(
        feature,
        Environment::Production,
        &context(user.map(str::to_owned), Default::default()),
    );
    let answer = |enabled: bool, reason: String| FeatureAnswer {
        feature: feature.to_owned(),
        enabled,
        beta,
        reason,
    };
    if !e.found {
        return Ok(answer(false, format!("no flag `{feature}`")));
    }
    if !e.enabled {
        return Ok(answer(
            false,
            format!("the flag is off for this user ({})", e.reason.as_str()),
        ));
    }
    if !beta {
        return Ok(answer(
            true,
            format!("the flag is on ({})", e.reason.as_str()),
        ));
    }
    let Some(user) = user else {
        return Ok(answer(false, "a beta feature: give `user_id`".into()));
    };
    let admitted = launch
        .launch_user(user)
        .await?
        .is_some_and(|u| u.admitted_at.is_some());
    Ok(if admitted {
        answer(true, "a beta feature, and the user is admitted".into())
    } else {
        answer(false, "a beta feature, and the user is not admitted".into())
    })
}
