//! User feedback: what a submission must look like, and the summary and feature-request backlog
//! computed from stored items. Pure: the service stores and loads, this validates and counts.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The longest message kept (characters); longer is refused, not cut.
pub const MAX_MESSAGE_CHARS: usize = 5_000;
/// The longest category name.
pub const MAX_CATEGORY_CHARS: usize = 50;
/// The longest feature-request title.
pub const MAX_REQUEST_CHARS: usize = 200;
/// The longest page path or URL.
pub const MAX_PAGE_CHARS: usize = 2_000;
/// The longest user id.
pub const MAX_USER_ID_CHARS: usize = 200;

/// What an app (or the widget) submits.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeedbackInput {
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub user_id: String,
    /// 1 (worst) to 5 (best).
    #[schema(minimum = 1, maximum = 5)]
    pub rating: u8,
    /// A short name such as `bug`, `ux`, `performance`, `feature`: lowercase letters, digits,
    /// `_` and `-`.
    #[schema(min_length = 1, max_length = 50, pattern = "^[a-z0-9][a-z0-9_-]*$")]
    pub category: String,
    /// Line breaks and tabs are kept; other control characters are refused.
    #[schema(
        max_length = 5000,
        pattern = "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f]*$"
    )]
    pub message: String,
    /// Where the user was (a path or URL).
    #[schema(
        max_length = 2000,
        pattern = "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f]*$"
    )]
    pub page: Option<String>,
    /// A short feature-request title; requests with the same title (ignoring case and spacing)
    /// count together in the backlog.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f]*$"
    )]
    pub request: Option<String>,
}

/// A submission that passed validation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewFeedback {
    pub user_id: String,
    pub rating: u8,
    pub category: String,
    pub message: String,
    pub page: Option<String>,
    pub request: Option<String>,
}

/// A stored item.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Feedback {
    pub id: i64,
    pub user_id: String,
    pub rating: u8,
    pub category: String,
    pub message: String,
    pub page: Option<String>,
    pub request: Option<String>,
    pub created_at: DateTime<Utc>,
    /// `open` or `resolved`.
    pub status: FeedbackStatus,
    pub resolution: Option<String>,
    pub resolved_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FeedbackStatus {
    Open,
    Resolved,
}

impl FeedbackStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Resolved => "resolved",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(Self::Open),
            "resolved" => Some(Self::Resolved),
            _ => None,
        }
    }
}

/// Why a submission was refused, naming the field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{field}` {problem}")]
pub struct FeedbackInvalid {
    pub field: &'static str,
    pub problem: String,
}

fn invalid(field: &'static str, problem: impl Into<String>) -> FeedbackInvalid {
    FeedbackInvalid {
        field,
        problem: problem.into(),
    }
}

/// Text that is free of control characters other than line breaks and tabs, within `max`.
fn text(
    field: &'static str,
    raw: &str,
    max: usize,
    allow_empty: bool,
) -> Result<String, FeedbackInvalid> {
    let trimmed = raw.trim();
    if !allow_empty && trimmed.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    let chars = trimmed.chars().count();
    if chars > max {
        return Err(invalid(
            field,
            format!("is {chars} characters; at most {max}"),
        ));
    }
    if trimmed
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(invalid(field, "contains control characters"));
    }
    Ok(trimmed.to_owned())
}

impl FeedbackInput {
    pub fn validate(self) -> Result<NewFeedback, FeedbackInvalid> {
        if !(1..=5).contains(&self.rating) {
            return Err(invalid(
                "rating",
                format!("is {}; give 1 (worst) to 5 (best)", self.rating),
            ));
        }
        let user_id = text("user_id", &self.user_id, MAX_USER_ID_CHARS, false)?;
        let category = text("category", &self.category, MAX_CATEGORY_CHARS, false)?;
        let mut chars = category.chars();
        let well_formed = chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if !well_formed {
            return Err(invalid(
                "category",
                "must be lowercase letters, digits, `_` or `-` (such as `bug`, `ux`, `feature`)",
            ));
        }
        Ok(NewFeedback {
            user_id,
            rating: self.rating,
            category,
            message: text("message", &self.message, MAX_MESSAGE_CHARS, true)?,
            page: self
                .page
                .map(|p| text("page", &p, MAX_PAGE_CHARS, true))
                .transpose()?
                .filter(|p| !p.is_empty()),
            request: self
                .request
                .map(|r| text("request", &r, MAX_REQUEST_CHARS, false))
                .transpose()?,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct CategorySummary {
    pub count: u64,
    pub average_rating: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct WeekAverage {
    /// The Monday the ISO week starts on.
    pub week_start: NaiveDate,
    pub count: u64,
    pub average_rating: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct FeedbackSummary {
    pub count: u64,
    /// `null` when there is no feedback.
    pub average_rating: Option<f64>,
    /// Items per rating, `"1"` to `"5"` (every key present).
    pub rating_distribution: BTreeMap<String, u64>,
    pub by_category: BTreeMap<String, CategorySummary>,
    /// Weekly averages, oldest first; weeks without feedback are left out.
    pub trend: Vec<WeekAverage>,
}

fn week_start(at: DateTime<Utc>) -> NaiveDate {
    let day = at.date_naive();
    day - Duration::days(i64::from(day.weekday().num_days_from_monday()))
}

fn mean(sum: u64, count: u64) -> f64 {
    if count == 0 {
        0.0
    } else {
        sum as f64 / count as f64
    }
}

/// Counts, averages, the rating histogram, per-category figures and the weekly trend.
pub fn summarize(items: &[Feedback]) -> FeedbackSummary {
    let mut distribution: BTreeMap<String, u64> = (1..=5).map(|r: u8| (r.to_string(), 0)).collect();
    let mut categories: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut weeks: BTreeMap<NaiveDate, (u64, u64)> = BTreeMap::new();
    let mut sum = 0u64;
    for item in items {
        let rating = u64::from(item.rating);
        sum += rating;
        *distribution.entry(item.rating.to_string()).or_default() += 1;
        let c = categories.entry(item.category.clone()).or_default();
        c.0 += 1;
        c.1 += rating;
        let w = weeks.entry(week_start(item.created_at)).or_default();
        w.0 += 1;
        w.1 += rating;
    }
    let count = items.len() as u64;
    FeedbackSummary {
        count,
        average_rating: (count > 0).then(|| mean(sum, count)),
        rating_distribution: distribution,
        by_category: categories
            .into_iter()
            .map(|(name, (n, s))| {
                (
                    name,
                    CategorySummary {
                        count: n,
                        average_rating: mean(s, n),
                    },
                )
            })
            .collect(),
        trend: weeks
            .into_iter()
            .map(|(week_start, (n, s))| WeekAverage {
                week_start,
                count: n,
                average_rating: mean(s, n),
            })
            .collect(),
    }
}

/// One feature request in the backlog.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct BacklogItem {
    /// The title as most recently written.
    pub request: String,
    /// Distinct users who asked: the ranking.
    pub users: u64,
    /// Submissions, a user asking twice counted twice.
    pub count: u64,
    pub average_rating: f64,
    pub latest_at: DateTime<Utc>,
}

/// The key requests are grouped by: lowercase, inner whitespace collapsed.
pub fn request_key(title: &str) -> String {
    title
        .split_whitespace()
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Feature requests grouped by title, ranked by distinct users asking (then by submissions,
/// then most recent, then title, so the order is total).
pub fn backlog(items: &[Feedback]) -> Vec<BacklogItem> {
    struct Group<'a> {
        title: &'a str,
        users: HashSet<&'a str>,
        count: u64,
        rating_sum: u64,
        latest_at: DateTime<Utc>,
    }
    let mut groups: HashMap<String, Group<'_>> = HashMap::new();
    for item in items {
        let Some(title) = item.request.as_deref() else {
            continue;
        };
        let key = request_key(title);
        if key.is_empty() {
            continue;
        }
        let g = groups.entry(key).or_insert_with(|| Group {
            title,
            users: HashSet::new(),
            count: 0,
            rating_sum: 0,
            latest_at: item.created_at,
        });
        g.users.insert(&item.user_id);
        g.count += 1;
        g.rating_sum += u64::from(item.rating);
        if item.created_at >= g.latest_at {
            g.latest_at = item.created_at;
            g.title = title;
        }
    }
    let mut out: Vec<BacklogItem> = groups
        .into_values()
        .map(|g| BacklogItem {
            request: g.title.to_owned(),
            users: g.users.len() as u64,
            count: g.count,
            average_rating: mean(g.rating_sum, g.count),
            latest_at: g.latest_at,
        })
        .collect();
    out.sort_by(|a, b| {
        b.users
            .cmp(&a.users)
            .then(b.count.cmp(&a.count))
            .then(b.latest_at.cmp(&a.latest_at))
            .then(a.request.cmp(&b.request))
    });
    out
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn input(rating: u8, category: &str, message: &str) -> FeedbackInput {
        FeedbackInput {
            user_id: "u1".into(),
            rating,
            category: category.into(),
            message: message.into(),
            page: None,
            request: None,
        }
    }

    #[test]
    fn bad_submissions_name_their_field() {
        for (bad, field) in [
            (input(0, "bug", "x"), "rating"),
            (input(6, "bug", "x"), "rating"),
            (input(3, "", "x"), "category"),
            (input(3, "Bug Report", "x"), "category"),
            (input(3, "bug", &"x".repeat(100 * 1024)), "message"),
            (input(3, "bug", "a\u{0}b"), "message"),
        ] {
            assert_eq!(bad.validate().unwrap_err().field, field);
        }
        let mut empty_user = input(3, "bug", "x");
        empty_user.user_id = "  ".into();
        assert_eq!(empty_user.validate().unwrap_err().field, "user_id");
        let ok = FeedbackInput {
            page: Some(" ".into()),
            request: Some(" Dark mode ".into()),
            ..input(5, "feature", " line one\nline two ")
        }
        .validate()
        .unwrap();
        assert_eq!(ok.message, "line one\nline two");
        assert_eq!(ok.page, None);
        assert_eq!(ok.request.as_deref(), Some("Dark mode"));
    }

    /// 500 items from a fixed formula; the expected figures computed independently below.
    fn generated() -> Vec<Feedback> {
        let start = Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).unwrap(); // a Monday
        let categories = ["bug", "ux", "performance", "feature"];
        let requests = [
            "Dark mode",
            "dark  MODE",
            "CSV export",
            "SSO",
            "Offline sync",
        ];
        (0..500)
            .map(|i: i64| Feedback {
                id: i + 1,
                user_id: format!("user-{}", i % 37),
                rating: (1 + (i * 7 % 5)) as u8,
                category: categories[(i % 4) as usize].into(),
                message: format!("message {i}"),
                page: None,
                request: (i % 3 == 0).then(|| requests[(i % 5) as usize].to_owned()),
                created_at: start + Duration::hours(i),
                status: FeedbackStatus::Open,
                resolution: None,
                resolved_at: None,
            })
            .collect()
    }

    #[test]
    fn the_summary_of_500_items_is_exact() {
        let items = generated();
        let s = summarize(&items);
        assert_eq!(s.count, 500);
        let sum: u64 = (0..500).map(|i: u64| 1 + (i * 7 % 5)).sum();
        assert_eq!(s.average_rating, Some(sum as f64 / 500.0));
        for r in 1..=5u64 {
            let n = (0..500u64).filter(|i| 1 + (i * 7 % 5) == r).count() as u64;
            assert_eq!(s.rating_distribution[&r.to_string()], n);
        }
        assert_eq!(s.by_category.len(), 4);
        assert_eq!(s.by_category["bug"].count, 125);
        let bug_sum: u64 = (0..500u64)
            .filter(|i| i % 4 == 0)
            .map(|i| 1 + (i * 7 % 5))
            .sum();
        assert_eq!(s.by_category["bug"].average_rating, bug_sum as f64 / 125.0);
        // 500 hours from a Monday 09:00 span weeks of 168 hours: 3 weeks of 168 h minus the
        // first 9 h, and the rest.
        assert_eq!(s.trend.iter().map(|w| w.count).sum::<u64>(), 500);
        assert_eq!(
            s.trend[0].week_start,
            NaiveDate::from_ymd_opt(2026, 11, 2).unwrap()
        );
        assert_eq!(s.trend[0].count, 168 - 9);
        assert!(
            s.trend
                .windows(2)
                .all(|w| w[0].week_start < w[1].week_start)
        );
    }

    #[test]
    fn the_backlog_ranks_by_distinct_users() {
        let items = generated();
        let b = backlog(&items);
        // "Dark mode" and "dark  MODE" are one request.
        assert_eq!(b.len(), 4);
        let total: u64 = b.iter().map(|x| x.count).sum();
        assert_eq!(total, (0..500).filter(|i| i % 3 == 0).count() as u64);
        for item in &b {
            let key = request_key(&item.request);
            let asked: Vec<&Feedback> = items
                .iter()
                .filter(|f| f.request.as_deref().map(request_key) == Some(key.clone()))
                .collect();
            let users: HashSet<&str> = asked.iter().map(|f| f.user_id.as_str()).collect();
            assert_eq!(item.users, users.len() as u64, "{}", item.request);
            assert_eq!(item.count, asked.len() as u64);
            assert_eq!(
                item.latest_at,
                asked.iter().map(|f| f.created_at).max().unwrap()
            );
        }
        assert!(b.windows(2).all(|w| w[0].users >= w[1].users));
        assert_eq!(request_key(&b[0].request), "dark mode");
    }

    #[test]
    fn nothing_summarizes_to_zero() {
        let s = summarize(&[]);
        assert_eq!(s.count, 0);
        assert_eq!(s.average_rating, None);
        assert_eq!(s.rating_distribution.len(), 5);
        assert!(backlog(&[]).is_empty());
    }
}
