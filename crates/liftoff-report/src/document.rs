//! The blocks a report is made of. Text is plain (renderers escape it for their format);
//! numbers arrive formatted, so every format shows the same digits.

use serde::Serialize;

/// A whole report: a title, a line under it (the period, when it was generated) and blocks
/// in reading order.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Document {
    pub title: String,
    pub subtitle: String,
    pub blocks: Vec<Block>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Block {
    /// A section (`##` in Markdown, `<h2>`).
    Heading {
        text: String,
    },
    /// A part of a section (`###`, `<h3>`).
    Subheading {
        text: String,
    },
    Paragraph {
        text: String,
    },
    /// A boxed verdict: the health grade, a trend, the biggest drop.
    Callout {
        tone: Tone,
        title: String,
        text: String,
    },
    Table(Table),
    Bullets {
        items: Vec<String>,
    },
    Chart(Chart),
}

/// How good a figure or verdict is; renderers colour by it (Markdown writes a word).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tone {
    #[default]
    Neutral,
    Good,
    Warning,
    Bad,
}

impl Tone {
    /// The word Markdown and plain text use for the tone.
    pub fn word(self) -> &'static str {
        match self {
            Tone::Neutral => "note",
            Tone::Good => "ok",
            Tone::Warning => "warning",
            Tone::Bad => "attention",
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Align {
    #[default]
    Left,
    /// Numbers.
    Right,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Column {
    pub title: String,
    pub align: Align,
}

impl Column {
    pub fn left(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            align: Align::Left,
        }
    }

    pub fn right(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            align: Align::Right,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Cell {
    pub text: String,
    /// Colours a status cell; `None` for ordinary text.
    pub tone: Option<Tone>,
}

impl Cell {
    pub fn toned(text: impl Into<String>, tone: Tone) -> Self {
        Self {
            text: text.into(),
            tone: Some(tone),
        }
    }
}

impl From<String> for Cell {
    fn from(text: String) -> Self {
        Self { text, tone: None }
    }
}

impl From<&str> for Cell {
    fn from(text: &str) -> Self {
        Self::from(text.to_owned())
    }
}

/// Rows of cells under titled columns. A table without rows renders `empty` instead.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Table {
    pub columns: Vec<Column>,
    /// Each row has one cell per column.
    pub rows: Vec<Vec<Cell>>,
    /// What to say when there are no rows ("No incidents this week.").
    pub empty: String,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChartKind {
    #[default]
    Line,
    Bar,
}

/// A small chart: one value per x label per series; `None` is a gap.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Chart {
    pub title: String,
    pub kind: ChartKind,
    /// The values' unit as shown on the axis (`ms`, `req/s`, `%`).
    pub unit: String,
    pub x_labels: Vec<String>,
    pub series: Vec<Series>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Series {
    pub name: String,
    pub values: Vec<Option<f64>>,
}
