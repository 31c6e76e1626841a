//! A report's layout, written once and rendered to every format.
//!
//! A report is computed by `liftoff-core` as a typed value (its JSON is the API's answer),
//! then laid out as a [`Document`]: headings, paragraphs, callouts, tables and charts of plain
//! text and numbers already formatted. The renderers here turn one [`Document`] into Markdown,
//! self-contained HTML (inline CSS and SVG, no scripts, no external requests, so it survives
//! email clients) and PDF (written directly with the standard Helvetica fonts: no browser, no
//! font files, the same bytes for the same document). Because every format reads the same
//! blocks, a number cannot say one thing in the Markdown and another in the PDF.

mod document;
mod html;
mod markdown;
pub mod numbers;
mod pdf;
mod svg;

pub use document::{Align, Block, Cell, Chart, ChartKind, Column, Document, Series, Table, Tone};
pub use html::html;
pub use markdown::markdown;
pub use pdf::pdf;
pub use svg::chart_svg;
