//! One self-contained HTML file: inline CSS and SVG, no scripts, no fonts, no URLs. It is
//! mailed, attached and opened offline, so it must not depend on (or call) anything outside
//! itself; the Content-Security-Policy says so to any browser that opens it, in case a
//! future change forgets.

use std::fmt::Write as _;

use crate::document::{Align, Block, Chart, Document, Table, Tone};
use crate::svg::chart_svg;

const CHART_WIDTH: u32 = 640;
const CHART_HEIGHT: u32 = 220;

/// Classes only, so the markup stays readable and email clients that keep a `<style>` in
/// the head render it whole. Colours meet WCAG AA contrast on their backgrounds.
const STYLE: &str = "\
:root{color-scheme:light}
*{box-sizing:border-box}
body{margin:0;background:#fff;color:#1f2328;font-family:system-ui,-apple-system,\"Segoe UI\",Roboto,\"Helvetica Neue\",Arial,sans-serif;font-size:15px;line-height:1.5;-webkit-text-size-adjust:100%;text-size-adjust:100%}
.report{max-width:860px;margin:0 auto;padding:32px 24px 48px}
h1{font-size:1.75rem;line-height:1.25;margin:0 0 4px}
h2{font-size:1.3rem;line-height:1.3;margin:32px 0 12px;padding-bottom:4px;border-bottom:1px solid #d0d7de}
h3{font-size:1.05rem;line-height:1.3;margin:24px 0 8px}
p{margin:0 0 12px}
ul{margin:0 0 16px;padding-left:24px}
li{margin:2px 0}
.muted{color:#57606a}
.subtitle{margin:0 0 24px}
.callout{margin:0 0 16px;padding:10px 14px;border-left:4px solid #8c959f;border-radius:4px;background:#f6f8fa}
.callout p{margin:0}
.callout .callout-title{margin-bottom:2px}
.callout.tone-good{border-left-color:#1a7f37;background:#effaf1}
.callout.tone-warning{border-left-color:#bf8700;background:#fff8e5}
.callout.tone-bad{border-left-color:#cf222e;background:#fff0f0}
.table-wrap{margin:0 0 16px;overflow-x:auto}
table{width:100%;border-collapse:collapse;font-size:.93rem}
th,td{padding:6px 10px;text-align:left;vertical-align:top;border-bottom:1px solid #d8dee4}
th{font-weight:600;background:#f6f8fa;border-bottom:2px solid #d0d7de}
tbody tr:nth-child(even) td{background:#f9fafb}
.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:.85em;font-weight:600;background:#eaeef2;color:#424a53}
.badge.tone-good{background:#dafbe1;color:#116329}
.badge.tone-warning{background:#fff1c5;color:#7d4e00}
.badge.tone-bad{background:#ffebe9;color:#a40e26}
figure{margin:0 0 20px}
figcaption{font-weight:600;margin:0 0 6px}
figure svg{display:block;max-width:100%;height:auto}
@page{size:A4;margin:16mm}
@media print{
body{font-size:10.5pt}
.report{max-width:none;padding:0}
h2,h3{break-after:avoid;page-break-after:avoid}
figure,.callout,tr{break-inside:avoid;page-break-inside:avoid}
thead{display:table-header-group}
.table-wrap{overflow:visible}
*{-webkit-print-color-adjust:exact;print-color-adjust:exact}
}
";

/// The document as a complete HTML5 page. The same document gives the same bytes.
pub fn html(doc: &Document) -> String {
    let title = if doc.title.trim().is_empty() {
        "Report"
    } else {
        doc.title.as_str()
    };
    let mut out = String::with_capacity(8 * 1024);
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src 'unsafe-inline'; img-src data:\">\n\
         <meta name=\"referrer\" content=\"no-referrer\">\n\
         <title>{}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n<main class=\"report\">\n\
         <h1>{}</h1>\n",
        escape(title),
        escape(&doc.title),
    );
    if !doc.subtitle.is_empty() {
        let _ = writeln!(
            out,
            "<p class=\"subtitle muted\">{}</p>",
            escape(&doc.subtitle)
        );
    }
    for block in &doc.blocks {
        match block {
            Block::Heading { text } => {
                let _ = writeln!(out, "<h2>{}</h2>", escape(text));
            }
            Block::Subheading { text } => {
                let _ = writeln!(out, "<h3>{}</h3>", escape(text));
            }
            Block::Paragraph { text } => {
                let _ = writeln!(out, "<p>{}</p>", escape(text));
            }
            Block::Callout { tone, title, text } => {
                let _ = writeln!(
                    out,
                    "<div class=\"callout {}\" role=\"note\">\
                     <p class=\"callout-title\"><strong>{}</strong></p><p>{}</p></div>",
                    tone_class(*tone),
                    escape(title),
                    escape(text),
                );
            }
            Block::Table(t) => table(&mut out, t),
            Block::Bullets { items } => {
                out.push_str("<ul>\n");
                for item in items {
                    let _ = writeln!(out, "<li>{}</li>", escape(item));
                }
                out.push_str("</ul>\n");
            }
            Block::Chart(c) => chart(&mut out, c),
        }
    }
    out.push_str("</main>\n</body>\n</html>\n");
    out
}

fn table(out: &mut String, t: &Table) {
    if t.rows.is_empty() {
        let _ = writeln!(out, "<p class=\"muted empty\">{}</p>", escape(&t.empty));
        return;
    }
    out.push_str("<div class=\"table-wrap\"><table>\n<thead><tr>");
    for c in &t.columns {
        let _ = write!(
            out,
            "<th scope=\"col\"{}>{}</th>",
            align_class(c.align),
            escape(&c.title)
        );
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in &t.rows {
        out.push_str("<tr>");
        // Short rows are padded and long ones cut, as in the Markdown: the columns decide.
        for (i, column) in t.columns.iter().enumerate() {
            let _ = write!(out, "<td{}>", align_class(column.align));
            if let Some(cell) = row.get(i) {
                match cell.tone {
                    Some(tone) => {
                        let _ = write!(
                            out,
                            "<span class=\"badge {}\">{}</span>",
                            tone_class(tone),
                            escape(&cell.text)
                        );
                    }
                    None => out.push_str(&escape(&cell.text)),
                }
            }
            out.push_str("</td>");
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table></div>\n");
}

fn chart(out: &mut String, c: &Chart) {
    let _ = writeln!(
        out,
        "<figure class=\"chart\">\n<figcaption>{}</figcaption>\n{}\n</figure>",
        escape(&c.title),
        chart_svg(c, CHART_WIDTH, CHART_HEIGHT),
    );
}

fn align_class(align: Align) -> &'static str {
    match align {
        Align::Left => "",
        Align::Right => " class=\"num\"",
    }
}

fn tone_class(tone: Tone) -> &'static str {
    match tone {
        Tone::Neutral => "tone-neutral",
        Tone::Good => "tone-good",
        Tone::Warning => "tone-warning",
        Tone::Bad => "tone-bad",
    }
}

/// Text for an HTML or XML text node or quoted attribute. Control characters (other than
/// tab and line breaks) and the two noncharacters are dropped: XML 1.0 forbids them, and a
/// chart's SVG must stay well-formed when it is saved on its own.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(c),
            '\u{FFFE}' | '\u{FFFF}' => {}
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::{Cell, ChartKind, Column, Series};
    use proptest::prelude::*;

    const EVIL: &str = "<script>alert(1)</script>\" onload=\"x";
    const EVIL_ESCAPED: &str = "&lt;script&gt;alert(1)&lt;/script&gt;&quot; onload=&quot;x";

    /// Every block type, with `text` in every string the document holds.
    fn every_block(text: &str) -> Document {
        let s = || text.to_owned();
        Document {
            title: s(),
            subtitle: s(),
            blocks: vec![
                Block::Heading { text: s() },
                Block::Subheading { text: s() },
                Block::Paragraph { text: s() },
                Block::Callout {
                    tone: Tone::Warning,
                    title: s(),
                    text: s(),
                },
                Block::Table(Table {
                    columns: vec![Column::left(s()), Column::right(s())],
                    rows: vec![
                        vec![Cell::from(s()), Cell::toned(s(), Tone::Bad)],
                        vec![Cell::from(s())],
                    ],
                    empty: s(),
                }),
                Block::Table(Table {
                    columns: vec![Column::left(s())],
                    rows: vec![],
                    empty: s(),
                }),
                Block::Bullets {
                    items: vec![s(), s()],
                },
                Block::Chart(Chart {
                    title: s(),
                    kind: ChartKind::Line,
                    unit: s(),
                    x_labels: vec![s(), s(), s()],
                    series: vec![
                        Series {
                            name: s(),
                            values: vec![Some(1.0), None, Some(3.0)],
                        },
                        Series {
                            name: s(),
                            values: vec![Some(2.0), Some(2.5), Some(f64::NAN)],
                        },
                    ],
                }),
                Block::Chart(Chart {
                    title: s(),
                    kind: ChartKind::Bar,
                    unit: String::new(),
                    x_labels: vec![s(), s()],
                    series: vec![Series {
                        name: s(),
                        values: vec![Some(87.0), Some(12.0)],
                    }],
                }),
            ],
        }
    }

    /// Attributes like ` onload=`: in a tag, outside its quoted attribute values (where
    /// escaped text may say "onload=" harmlessly).
    fn event_handlers(out: &str) -> usize {
        out.split('<')
            .skip(1)
            .map(|s| {
                let tag = s.split('>').next().unwrap_or("");
                tag.split('"').step_by(2).collect::<Vec<_>>().join(" ")
            })
            .map(|tag| {
                tag.match_indices(" on")
                    .filter(|(i, _)| {
                        let rest = &tag[i + 3..];
                        let name = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
                        name > 0 && rest[name..].trim_start().starts_with('=')
                    })
                    .count()
            })
            .sum()
    }

    #[test]
    fn the_event_handler_check_can_fail() {
        assert_eq!(event_handlers("<svg onload=\"x\">"), 1);
        assert_eq!(event_handlers("<p title=\"a onload=b\">c onload=d</p>"), 0);
    }

    fn without_svg_namespace(out: &str) -> String {
        out.replace("xmlns=\"http://www.w3.org/2000/svg\"", "")
    }

    #[test]
    fn user_text_cannot_inject_markup() {
        let out = html(&every_block(EVIL));
        assert!(!out.to_lowercase().contains("<script"), "{out}");
        assert!(!out.contains("\" onload"), "{out}");
        assert!(!out.contains("onload=\""), "{out}");
        for (at, want) in [
            ("<title>", format!("<title>{EVIL_ESCAPED}</title>")),
            ("h1", format!("<h1>{EVIL_ESCAPED}</h1>")),
            ("cell", format!("<td>{EVIL_ESCAPED}</td>")),
            (
                "badge",
                format!("<span class=\"badge tone-bad\">{EVIL_ESCAPED}</span>"),
            ),
            ("bullet", format!("<li>{EVIL_ESCAPED}</li>")),
            (
                "caption",
                format!("<figcaption>{EVIL_ESCAPED}</figcaption>"),
            ),
            ("svg label", format!("aria-label=\"{EVIL_ESCAPED}\"")),
            ("legend", format!(">{EVIL_ESCAPED}</text>")),
        ] {
            assert!(out.contains(&want), "{at}: {want} missing from {out}");
        }
        // The chart's x labels are shortened to their slot; what is left is still escaped.
        assert!(out.contains(">&lt;script&gt;"), "{out}");
    }

    #[test]
    fn nothing_is_fetched_or_run() {
        let out = html(&every_block("https://evil.example/x.js"));
        let rest = without_svg_namespace(&out);
        // User text may mention a URL; it must never be one the page loads or links.
        let page = html(&every_block("plain"));
        let page = without_svg_namespace(&page);
        assert!(
            !page.contains("http://") && !page.contains("https://"),
            "{page}"
        );
        for needle in [
            "src=", "href=", "url(", "@import", "<script", "<link", "<iframe", "<img",
        ] {
            assert!(!page.contains(needle), "{needle} in {page}");
        }
        assert_eq!(event_handlers(&out), 0, "{out}");
        assert_eq!(event_handlers(&html(&every_block(EVIL))), 0);
        assert!(!rest.contains("src=") && !rest.contains("href="), "{rest}");
        assert!(out.contains(
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
             style-src 'unsafe-inline'; img-src data:\">"
        ));
    }

    #[test]
    fn every_block_type_renders() {
        let out = html(&every_block("Text"));
        assert!(
            out.starts_with("<!doctype html>\n<html lang=\"en\">"),
            "{out}"
        );
        for needle in [
            "<meta charset=\"utf-8\">",
            "<meta name=\"viewport\"",
            "<title>Text</title>",
            "<h1>Text</h1>",
            "<p class=\"subtitle muted\">Text</p>",
            "<h2>Text</h2>",
            "<h3>Text</h3>",
            "<p>Text</p>",
            "<div class=\"callout tone-warning\" role=\"note\"><p class=\"callout-title\"><strong>Text</strong></p><p>Text</p></div>",
            "<thead><tr><th scope=\"col\">Text</th><th scope=\"col\" class=\"num\">Text</th></tr></thead>",
            "<td class=\"num\"><span class=\"badge tone-bad\">Text</span></td>",
            // A short row is padded to the columns.
            "<tr><td>Text</td><td class=\"num\"></td></tr>",
            "<ul>\n<li>Text</li>\n<li>Text</li>\n</ul>",
            "<figure class=\"chart\">\n<figcaption>Text</figcaption>\n<svg ",
            "@page{size:A4;margin:16mm}",
            "@media print{",
        ] {
            assert!(out.contains(needle), "{needle} missing from {out}");
        }
        assert_eq!(out.matches("<svg ").count(), 2, "{out}");
        assert_eq!(out.matches("<table>").count(), 1, "{out}");
        assert!(out.ends_with("</html>\n"));
        assert!(!out.contains("style=\""), "inline styles: {out}");
        assert_eq!(out, html(&every_block("Text")), "deterministic");
    }

    #[test]
    fn an_empty_table_says_its_empty_text() {
        let doc = Document {
            title: "T".into(),
            subtitle: String::new(),
            blocks: vec![Block::Table(Table {
                columns: vec![Column::left("Id"), Column::right("Minutes")],
                rows: vec![],
                empty: "No incidents this week.".into(),
            })],
        };
        let out = html(&doc);
        assert!(
            out.contains("<p class=\"muted empty\">No incidents this week.</p>"),
            "{out}"
        );
        assert!(!out.contains("<table") && !out.contains("Minutes"), "{out}");
        assert!(
            !out.contains("class=\"subtitle"),
            "no empty subtitle: {out}"
        );
    }

    #[test]
    fn escape_covers_the_five_characters_and_drops_controls() {
        assert_eq!(
            escape("a&b<c>d\"e'f\u{0}g\u{1b}h\ni"),
            "a&amp;b&lt;c&gt;d&quot;e&#39;fgh\ni"
        );
    }

    proptest! {
        /// Whatever the text (with something visible in it, as blank text legitimately drops a
        /// chart's unit), the page has the same markup: every `<` comes from the
        /// renderer, none from the document.
        #[test]
        fn arbitrary_text_never_adds_markup(
            text in (".{0,20}", ".{0,20}").prop_map(|(a, b)| format!("{a}x{b}")),
        ) {
            let out = html(&every_block(&text));
            let reference = html(&every_block("x"));
            prop_assert!(!out.to_lowercase().contains("<script"));
            prop_assert_eq!(out.matches('<').count(), reference.matches('<').count());
            prop_assert_eq!(out.matches('>').count(), reference.matches('>').count());
            prop_assert_eq!(out.matches('"').count(), reference.matches('"').count());
        }
    }
}
