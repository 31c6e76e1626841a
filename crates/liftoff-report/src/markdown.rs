//! Markdown (GitHub's flavour: pipe tables). Charts become a table of their values, so the
//! Markdown keeps every number a chart shows.

use std::fmt::Write as _;

use crate::document::{Align, Block, Chart, Column, Document, Table};

/// The document as Markdown, ending with one newline.
pub fn markdown(doc: &Document) -> String {
    let mut out = format!("# {}\n\n", inline(&doc.title));
    if !doc.subtitle.is_empty() {
        let _ = writeln!(out, "{}\n", inline(&doc.subtitle));
    }
    for block in &doc.blocks {
        match block {
            Block::Heading { text } => {
                let _ = writeln!(out, "## {}\n", inline(text));
            }
            Block::Subheading { text } => {
                let _ = writeln!(out, "### {}\n", inline(text));
            }
            Block::Paragraph { text } => {
                let _ = writeln!(out, "{}\n", inline(text));
            }
            Block::Callout { tone, title, text } => {
                let _ = writeln!(
                    out,
                    "> **{}** ({})  \n> {}\n",
                    inline(title),
                    tone.word(),
                    inline(text)
                );
            }
            Block::Table(t) => table(&mut out, t),
            Block::Bullets { items } => {
                for item in items {
                    let _ = writeln!(out, "- {}", inline(item));
                }
                out.push('\n');
            }
            Block::Chart(c) => chart(&mut out, c),
        }
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

fn table(out: &mut String, t: &Table) {
    if t.rows.is_empty() {
        let _ = writeln!(out, "{}\n", inline(&t.empty));
        return;
    }
    let head: Vec<String> = t.columns.iter().map(|c| cell(&c.title)).collect();
    let _ = writeln!(out, "| {} |", head.join(" | "));
    let rule: Vec<&str> = t
        .columns
        .iter()
        .map(|c| match c.align {
            Align::Left => "---",
            Align::Right => "---:",
        })
        .collect();
    let _ = writeln!(out, "| {} |", rule.join(" | "));
    for row in &t.rows {
        let cells: Vec<String> = (0..t.columns.len())
            .map(|i| row.get(i).map_or_else(String::new, |c| cell(&c.text)))
            .collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    out.push('\n');
}

fn chart(out: &mut String, c: &Chart) {
    let _ = writeln!(out, "*{}*\n", inline(&c.title));
    let mut columns = vec![Column::left("")];
    columns.extend(c.series.iter().map(|s| {
        Column::right(if c.unit.is_empty() {
            s.name.clone()
        } else {
            format!("{} ({})", s.name, c.unit)
        })
    }));
    let rows = c
        .x_labels
        .iter()
        .enumerate()
        .map(|(i, label)| {
            let mut row = vec![label.as_str().into()];
            row.extend(c.series.iter().map(|s| {
                s.values
                    .get(i)
                    .copied()
                    .flatten()
                    .map_or_else(|| "–".to_owned(), crate::svg::axis_number)
                    .into()
            }));
            row
        })
        .collect();
    table(
        out,
        &Table {
            columns,
            rows,
            empty: "No data.".to_owned(),
        },
    );
}

/// Text that cannot start a block or break the line it is on.
fn inline(s: &str) -> String {
    let flat = s.replace(['\r', '\n'], " ");
    let t = flat.trim_start();
    // A leading `#`, `>`, `-`, `+` or `1.` would turn a paragraph into another block.
    if t.starts_with(['#', '>', '-', '+', '*', '|']) || starts_with_ordinal(t) {
        format!("\\{t}")
    } else {
        t.to_owned()
    }
}

fn starts_with_ordinal(t: &str) -> bool {
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    let rest = &t[digits..];
    digits > 0 && (rest.starts_with(". ") || rest.starts_with(") ") || rest == "." || rest == ")")
}

/// A table cell: pipes escaped, on one line (a cell cannot start a block).
fn cell(s: &str) -> String {
    s.replace(['\r', '\n'], " ").trim().replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::{Cell, Series, Tone};

    #[test]
    fn blocks_render_in_order_and_cells_cannot_break_their_row() {
        let doc = Document {
            title: "Weekly".into(),
            subtitle: "1 – 7 June".into(),
            blocks: vec![
                Block::Heading {
                    text: "Summary".into(),
                },
                Block::Callout {
                    tone: Tone::Good,
                    title: "Health A".into(),
                    text: "All targets met.".into(),
                },
                Block::Table(Table {
                    columns: vec![Column::left("Endpoint"), Column::right("Share")],
                    rows: vec![vec![Cell::from("GET /a|b\nc"), Cell::from("50.0 %")]],
                    empty: String::new(),
                }),
                Block::Table(Table {
                    columns: vec![Column::left("Id")],
                    rows: vec![],
                    empty: "No incidents.".into(),
                }),
                Block::Bullets {
                    items: vec!["# not a heading".into()],
                },
            ],
        };
        let md = markdown(&doc);
        assert_eq!(
            md,
            "# Weekly\n\n1 – 7 June\n\n## Summary\n\n> **Health A** (ok)  \n> All targets met.\n\n\
             | Endpoint | Share |\n| --- | ---: |\n| GET /a\\|b c | 50.0 % |\n\nNo incidents.\n\n\
             - \\# not a heading\n"
        );
    }

    #[test]
    fn charts_keep_their_numbers_as_a_table() {
        let doc = Document {
            title: "T".into(),
            subtitle: String::new(),
            blocks: vec![Block::Chart(Chart {
                title: "Latency".into(),
                unit: "ms".into(),
                x_labels: vec!["W1".into(), "W2".into()],
                series: vec![Series {
                    name: "avg".into(),
                    values: vec![Some(120.5), None],
                }],
                ..Chart::default()
            })],
        };
        let md = markdown(&doc);
        assert!(md.contains("| W1 | 120.5 |"), "{md}");
        assert!(md.contains("| W2 | – |"), "{md}");
        assert!(md.contains("avg (ms)"), "{md}");
    }
}
