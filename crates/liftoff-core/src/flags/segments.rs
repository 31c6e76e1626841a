//! Segments: named, reusable groups of constraints ("beta testers", "EU customers") that flag
//! rules and a flag's simple strategy refer to by id, so a group is defined once.

use chrono::{DateTime, Utc};
use liftoff_eval::{ConstraintDef, FeatureDef, SegmentDef, StrategyDef};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Segment {
    pub id: i64,
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// All must hold for a user to be in the segment.
    #[schema(value_type = Vec<Object>)]
    pub constraints: Vec<ConstraintDef>,
    pub updated_at: DateTime<Utc>,
}

/// A segment as people send it.
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct SegmentInput {
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// All must hold for a user to be in the segment: 1 to 100 Unleash constraints.
    #[schema(schema_with = constraints_schema)]
    pub constraints: Vec<ConstraintDef>,
    /// Why; kept in the audit log.
    pub reason: Option<String>,
}

impl Segment {
    pub fn to_def(&self) -> SegmentDef {
        SegmentDef {
            id: self.id,
            name: Some(self.name.clone()),
            constraints: self.constraints.clone(),
        }
    }
}

/// Every problem with a segment, each naming its field.
pub fn validate_segment(input: &SegmentInput) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    if input.name.trim().is_empty() || input.name.chars().count() > 100 {
        problems.push("name: must be 1 to 100 characters".to_owned());
    }
    if input.constraints.is_empty() || input.constraints.len() > 100 {
        problems.push("constraints: between 1 and 100".to_owned());
    }
    // The evaluator's checks, on a strategy that holds exactly these constraints.
    let probe = FeatureDef {
        name: "segment".into(),
        enabled: true,
        strategies: vec![StrategyDef {
            name: "default".into(),
            constraints: input.constraints.clone(),
            ..Default::default()
        }],
        ..Default::default()
    };
    if let Err(errors) = liftoff_eval::validate(&probe) {
        problems.extend(
            errors
                .iter()
                .map(|e| e.to_string().replace("strategies[0].", "")),
        );
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// `constraints`: 1 to 100 Unleash constraint objects.
fn constraints_schema() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    ArrayBuilder::new()
        .items(ObjectBuilder::new().schema_type(Type::Object))
        .min_items(Some(1))
        .max_items(Some(100))
        .description(Some(
            "All must hold for a user to be in the segment: 1 to 100 Unleash constraints.",
        ))
        .build()
}
