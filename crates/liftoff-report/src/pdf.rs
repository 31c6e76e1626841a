//! PDF 1.4 written by hand. The standard Helvetica fonts need no embedding, so a report is a
//! few kilobytes and the same document always gives the same bytes (no dates, no ids).
//!
//! Layout runs first and produces each page's drawing operations; only then is the page
//! count known for the `Page N of M` footers, and the file is assembled around the pages.

mod fonts;
#[cfg(test)]
mod tests;

use std::fmt::Write as _;
use std::io::Write as _;
use std::mem::take;

use flate2::{Compression, write::ZlibEncoder};

use crate::document::{Align, Block, Chart, ChartKind, Document, Table, Tone};
use fonts::{Font, winansi};

const PAGE_W: f64 = 595.28;
const PAGE_H: f64 = 841.89;
const LEFT: f64 = 48.0;
const RIGHT: f64 = PAGE_W - 48.0;
const TEXT_W: f64 = RIGHT - LEFT;
const TOP: f64 = PAGE_H - 48.0;
const BOTTOM: f64 = 54.0;
const FOOTER_Y: f64 = 30.0;

type Rgb = [u8; 3];
const INK: Rgb = [0x1f, 0x23, 0x28];
const GREY: Rgb = [0x59, 0x63, 0x6e];
const RULE: Rgb = [0xd0, 0xd7, 0xde];
const GRID: Rgb = [0xe4, 0xe8, 0xec];
const HEADER_BG: Rgb = [0xee, 0xf1, 0xf4];
/// Okabe–Ito: distinguishable with the common colour-vision deficiencies and in greyscale print.
const PALETTE: [Rgb; 6] = [
    [0x00, 0x72, 0xb2],
    [0xe6, 0x9f, 0x00],
    [0x00, 0x9e, 0x73],
    [0xd5, 0x5e, 0x00],
    [0xcc, 0x79, 0xa7],
    [0x56, 0xb4, 0xe9],
];

/// Text colour, box fill and bar colour for a tone.
fn tone_colours(tone: Tone) -> (Rgb, Rgb, Rgb) {
    match tone {
        Tone::Good => ([0x1a, 0x7f, 0x37], [0xe6, 0xf6, 0xea], [0x2d, 0xa4, 0x4e]),
        Tone::Warning => ([0x9a, 0x67, 0x00], [0xfd, 0xf6, 0xe0], [0xd4, 0xa7, 0x2c]),
        Tone::Bad => ([0xcf, 0x22, 0x2e], [0xfd, 0xec, 0xec], [0xe5, 0x53, 0x4b]),
        Tone::Neutral => (GREY, [0xf3, 0xf5, 0xf7], [0x8c, 0x95, 0x9f]),
    }
}

#[derive(Clone, Copy, Debug)]
struct Style {
    font: Font,
    size: f64,
    /// Line height.
    lead: f64,
    colour: Rgb,
}

impl Style {
    const fn new(font: Font, size: f64, lead: f64, colour: Rgb) -> Self {
        Self {
            font,
            size,
            lead,
            colour,
        }
    }

    fn width(&self, text: &[u8]) -> f64 {
        self.font.width(text, self.size)
    }

    fn with(self, colour: Rgb) -> Self {
        Self { colour, ..self }
    }

    /// The baseline that centres a line in the `lead` below `top`.
    fn baseline(&self, top: f64) -> f64 {
        top - self.lead / 2.0 - self.size * 0.35
    }
}

const TITLE: Style = Style::new(Font::Bold, 20.0, 25.0, INK);
const SUBTITLE: Style = Style::new(Font::Regular, 10.0, 14.0, GREY);
const HEADING: Style = Style::new(Font::Bold, 14.0, 18.0, INK);
const SUBHEADING: Style = Style::new(Font::Bold, 11.5, 15.0, INK);
const BODY: Style = Style::new(Font::Regular, 10.0, 14.0, INK);
const BODY_BOLD: Style = Style::new(Font::Bold, 10.0, 14.0, INK);
const CELL: Style = Style::new(Font::Regular, 9.0, 11.5, INK);
const CELL_HEAD: Style = Style::new(Font::Bold, 9.0, 11.5, INK);
const SMALL: Style = Style::new(Font::Regular, 7.5, 10.0, GREY);
const FOOTER: Style = Style::new(Font::Regular, 8.0, 10.0, GREY);

const BULLET_INDENT: f64 = 14.0;
const CALLOUT_PAD: f64 = 8.0;
const CALLOUT_BAR: f64 = 3.0;
const CELL_PAD_X: f64 = 5.0;
const CELL_PAD_Y: f64 = 3.0;
/// A table header taller than this is clipped rather than repeated across a page of its own.
const HEADER_MAX_LINES: usize = 4;
const PLOT_H: f64 = 170.0;
/// Beyond this many x labels, only every n-th is written so they don't collide.
const MAX_X_LABELS: usize = 8;

/// The document as a PDF file.
pub fn pdf(doc: &Document) -> Vec<u8> {
    let mut l = Layout::new();
    l.paragraph(&doc.title, &TITLE);
    l.gap(2.0);
    l.paragraph(&doc.subtitle, &SUBTITLE);
    l.gap(6.0);
    for block in &doc.blocks {
        match block {
            Block::Heading { text } => l.heading(text, &HEADING, 18.0, 4.0),
            Block::Subheading { text } => l.heading(text, &SUBHEADING, 12.0, 0.0),
            Block::Paragraph { text } => {
                l.gap(8.0);
                l.paragraph(text, &BODY);
            }
            Block::Callout { tone, title, text } => l.callout(*tone, title, text),
            Block::Table(t) => l.table(t),
            Block::Bullets { items } => l.bullets(items),
            Block::Chart(c) => l.chart(c),
        }
    }
    let pages = l.finish(&winansi(&doc.title));
    write_file(&doc.title, &pages)
}

/// Splits `text` into lines no wider than `width`, breaking at spaces; a word longer than
/// a line is broken between characters so nothing runs off the page.
fn wrap(text: &[u8], st: &Style, width: f64) -> Vec<Vec<u8>> {
    let space = st.width(b" ");
    let mut lines = Vec::new();
    let mut line = Vec::new();
    let mut line_w = 0.0;
    for word in text.split(|&b| b == b' ').filter(|w| !w.is_empty()) {
        let w = st.width(word);
        if !line.is_empty() && line_w + space + w <= width + 1e-6 {
            line.push(b' ');
            line.extend_from_slice(word);
            line_w += space + w;
            continue;
        }
        if !line.is_empty() {
            lines.push(take(&mut line));
        }
        line_w = 0.0;
        for &b in word {
            let bw = st.width(&[b]);
            if !line.is_empty() && line_w + bw > width + 1e-6 {
                lines.push(take(&mut line));
                line_w = 0.0;
            }
            line.push(b);
            line_w += bw;
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// `text` cut to `width` with an ellipsis, for places that have one line (labels, footer).
fn fit(text: &[u8], st: &Style, width: f64) -> Vec<u8> {
    if st.width(text) <= width {
        return text.to_vec();
    }
    let mut out = Vec::new();
    let mut w = st.width(&[0x85]);
    for &b in text {
        w += st.width(&[b]);
        if w > width {
            break;
        }
        out.push(b);
    }
    out.push(0x85);
    out
}

/// A number for a content stream: PDF has no exponent notation, and two decimals are far
/// below what a printer resolves.
fn num(v: f64) -> String {
    if !v.is_finite() {
        return "0".to_owned();
    }
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0" } else { s }.to_owned()
}

fn nums(vs: &[f64]) -> String {
    vs.iter().map(|&v| num(v)).collect::<Vec<_>>().join(" ")
}

fn colour(rgb: Rgb) -> String {
    nums(&rgb.map(|c| f64::from(c) / 255.0))
}

/// A PDF literal string's body: the delimiters and the escape character escaped.
fn escape(out: &mut Vec<u8>, text: &[u8]) {
    for &b in text {
        match b {
            b'(' | b')' | b'\\' => out.extend_from_slice(&[b'\\', b]),
            0..=31 => {
                let _ = write!(out, "\\{b:03o}");
            }
            _ => out.push(b),
        }
    }
}

fn text(out: &mut Vec<u8>, st: &Style, x: f64, y: f64, s: &[u8]) {
    if s.is_empty() {
        return;
    }
    let (c, size, at) = (colour(st.colour), num(st.size), nums(&[x, y]));
    let _ = write!(out, "{c} rg BT /{} {size} Tf {at} Td (", st.font.resource());
    escape(out, s);
    out.extend_from_slice(b") Tj ET\n");
}

fn rect(out: &mut Vec<u8>, x: f64, y: f64, w: f64, h: f64, fill: Rgb) {
    let _ = writeln!(out, "{} rg {} re f", colour(fill), nums(&[x, y, w, h]));
}

/// A thin horizontal line.
fn rule(out: &mut Vec<u8>, x1: f64, x2: f64, y: f64, c: Rgb) {
    let (c, from, to) = (colour(c), nums(&[x1, y]), nums(&[x2, y]));
    let _ = writeln!(out, "{c} RG 0.5 w {from} m {to} l S");
}

/// A table cell placed in its column, already wrapped.
struct CellBox {
    x: f64,
    w: f64,
    align: Align,
    colour: Rgb,
    lines: Vec<Vec<u8>>,
}

struct Row {
    cells: Vec<CellBox>,
    st: Style,
    fill: Option<Rgb>,
}

impl Row {
    fn lines(&self) -> usize {
        self.cells.iter().map(|c| c.lines.len()).fold(1, usize::max)
    }

    fn height(&self, lines: usize) -> f64 {
        lines as f64 * self.st.lead + 2.0 * CELL_PAD_Y
    }
}

struct Layout {
    done: Vec<Vec<u8>>,
    page: Vec<u8>,
    /// Top of the free space on the current page.
    y: f64,
    /// Where content starts on this page (below a repeated table header).
    page_top: f64,
    /// The header of the table being drawn, repeated at the top of each page it continues on.
    header: Option<Row>,
}

impl Layout {
    fn new() -> Self {
        Self {
            done: Vec::new(),
            page: Vec::new(),
            y: TOP,
            page_top: TOP,
            header: None,
        }
    }

    fn room(&self) -> f64 {
        self.y - BOTTOM
    }

    /// Nothing placed on this page yet, so moving on would gain no room.
    fn fresh(&self) -> bool {
        self.y >= self.page_top - 1e-6
    }

    fn new_page(&mut self) {
        self.done.push(take(&mut self.page));
        self.y = TOP;
        if let Some(h) = self.header.take() {
            self.row_part(&h, 0, h.lines());
            self.header = Some(h);
        }
        self.page_top = self.y;
    }

    /// Space above a block, dropped at the top of a page.
    fn gap(&mut self, h: f64) {
        if !self.fresh() {
            self.y -= h;
        }
    }

    /// Keeps the next `h` points together by moving to a new page when they don't fit.
    fn need(&mut self, h: f64) {
        if h > self.room() && !self.fresh() {
            self.new_page();
        }
    }

    /// How many of the `left` lines of a block (`lead` each, `pad` above and below) to place
    /// on this page. A block that fits on a page is never split; a longer one fills pages.
    fn take_lines(&mut self, left: usize, lead: f64, pad: f64) -> usize {
        let here = ((self.room() - 2.0 * pad) / lead + 1e-6).floor().max(0.0) as usize;
        if here >= left {
            return left;
        }
        let header = self.header.as_ref().map_or(0.0, |h| h.height(h.lines()));
        let fits_a_page = left as f64 * lead + 2.0 * pad <= TOP - BOTTOM - header;
        if !self.fresh() && (fits_a_page || here == 0) {
            self.new_page();
            return self.take_lines(left, lead, pad);
        }
        here.max(1).min(left)
    }

    fn paragraph(&mut self, s: &str, st: &Style) {
        self.flow(&wrap(&winansi(s), st, TEXT_W), st);
    }

    fn flow(&mut self, lines: &[Vec<u8>], st: &Style) {
        for line in lines {
            self.take_lines(1, st.lead, 0.0);
            text(&mut self.page, st, LEFT, st.baseline(self.y), line);
            self.y -= st.lead;
        }
    }

    fn heading(&mut self, s: &str, st: &Style, above: f64, below: f64) {
        let lines = wrap(&winansi(s), st, TEXT_W);
        self.gap(above);
        // Keep a heading with the first lines of what it introduces.
        self.need(lines.len() as f64 * st.lead + below + 3.0 * BODY.lead);
        self.flow(&lines, st);
        if below > 0.0 {
            self.y -= 2.0;
            rule(&mut self.page, LEFT, RIGHT, self.y, RULE);
            self.y -= below;
        }
    }

    fn bullets(&mut self, items: &[String]) {
        self.gap(6.0);
        for item in items {
            let lines = wrap(&winansi(item), &BODY, TEXT_W - BULLET_INDENT);
            for (i, line) in lines.iter().enumerate() {
                self.take_lines(1, BODY.lead, 0.0);
                let base = BODY.baseline(self.y);
                if i == 0 {
                    text(&mut self.page, &BODY, LEFT + 3.0, base, &[0x95]);
                }
                text(&mut self.page, &BODY, LEFT + BULLET_INDENT, base, line);
                self.y -= BODY.lead;
            }
            self.y -= 2.0;
        }
    }

    fn callout(&mut self, tone: Tone, title: &str, body: &str) {
        let (ink, fill, bar) = tone_colours(tone);
        let inner = TEXT_W - CALLOUT_BAR - 2.0 * CALLOUT_PAD;
        let head = BODY_BOLD.with(ink);
        let styled = |s: &str, st: Style| {
            wrap(&winansi(s), &st, inner)
                .into_iter()
                .map(move |l| (st, l))
        };
        let lines: Vec<_> = styled(title, head).chain(styled(body, BODY)).collect();
        self.gap(10.0);
        let mut rest = &lines[..];
        while !rest.is_empty() {
            let k = self.take_lines(rest.len(), BODY.lead, CALLOUT_PAD);
            let (now, later) = rest.split_at(k);
            let h = k as f64 * BODY.lead + 2.0 * CALLOUT_PAD;
            rect(&mut self.page, LEFT, self.y - h, TEXT_W, h, fill);
            rect(&mut self.page, LEFT, self.y - h, CALLOUT_BAR, h, bar);
            let mut top = self.y - CALLOUT_PAD;
            for (st, line) in now {
                let x = LEFT + CALLOUT_BAR + CALLOUT_PAD;
                text(&mut self.page, st, x, st.baseline(top), line);
                top -= st.lead;
            }
            self.y -= h;
            rest = later;
        }
    }

    fn table(&mut self, t: &Table) {
        self.gap(10.0);
        let cols = t.columns.len();
        if t.rows.is_empty() || cols == 0 {
            self.paragraph(&t.empty, &BODY.with(GREY));
            return;
        }
        let heads: Vec<Vec<u8>> = t.columns.iter().map(|c| winansi(&c.title)).collect();
        let body: Vec<Vec<Vec<u8>>> = t
            .rows
            .iter()
            .map(|r| {
                (0..cols)
                    .map(|i| r.get(i).map_or_else(Vec::new, |c| winansi(&c.text)))
                    .collect()
            })
            .collect();
        let natural: Vec<f64> = (0..cols)
            .map(|i| {
                let widest = body
                    .iter()
                    .map(|r| CELL.width(&r[i]))
                    .fold(CELL_HEAD.width(&heads[i]), f64::max);
                widest + 2.0 * CELL_PAD_X
            })
            .collect();
        let widths = column_widths(&natural, TEXT_W);
        let row = |texts: &[Vec<u8>], st: Style, tones: &dyn Fn(usize) -> Option<Tone>| Row {
            cells: (0..cols)
                .map(|i| {
                    let mut lines = wrap(&texts[i], &st, widths[i] - 2.0 * CELL_PAD_X);
                    if st.font == Font::Bold {
                        lines.truncate(HEADER_MAX_LINES);
                    }
                    CellBox {
                        x: LEFT + widths[..i].iter().sum::<f64>(),
                        w: widths[i],
                        align: t.columns[i].align,
                        colour: tones(i).map_or(INK, |t| tone_colours(t).0),
                        lines,
                    }
                })
                .collect(),
            st,
            fill: (st.font == Font::Bold).then_some(HEADER_BG),
        };
        let header = row(&heads, CELL_HEAD, &|_| None);
        self.need(header.height(header.lines()) + CELL.lead + 2.0 * CELL_PAD_Y);
        self.row_part(&header, 0, header.lines());
        self.header = Some(header);
        for (cells, texts) in t.rows.iter().zip(&body) {
            let r = row(texts, CELL, &|i| cells.get(i).and_then(|c| c.tone));
            let (mut from, n) = (0, r.lines());
            while from < n {
                let k = self.take_lines(n - from, r.st.lead, CELL_PAD_Y);
                self.row_part(&r, from, k);
                from += k;
            }
        }
        self.header = None;
    }

    /// Draws lines `from..from + k` of a row, so a row taller than a page can continue.
    fn row_part(&mut self, r: &Row, from: usize, k: usize) {
        let h = r.height(k);
        let (x0, x1) = match (r.cells.first(), r.cells.last()) {
            (Some(a), Some(b)) => (a.x, b.x + b.w),
            _ => return,
        };
        if let Some(fill) = r.fill {
            rect(&mut self.page, x0, self.y - h, x1 - x0, h, fill);
        }
        for c in &r.cells {
            let st = r.st.with(c.colour);
            let mut top = self.y - CELL_PAD_Y;
            for line in c.lines.iter().skip(from).take(k) {
                let x = match c.align {
                    Align::Left => c.x + CELL_PAD_X,
                    Align::Right => c.x + c.w - CELL_PAD_X - st.width(line),
                };
                text(&mut self.page, &st, x, st.baseline(top), line);
                top -= st.lead;
            }
        }
        self.y -= h;
        rule(&mut self.page, x0, x1, self.y, RULE);
    }

    fn chart(&mut self, c: &Chart) {
        let n = c.series.iter().map(|s| s.values.len());
        let n = n.fold(c.x_labels.len(), usize::max);
        let finite = |v: &Option<f64>| v.filter(|v| v.is_finite());
        let (lo, hi, ticks) = scale(
            c.series
                .iter()
                .flat_map(|s| s.values.iter().filter_map(finite)),
        );
        let label = |t: &f64| winansi(&crate::svg::axis_number(*t));
        let labels: Vec<_> = ticks.iter().map(label).collect();
        let label_w = labels.iter().map(|l| SMALL.width(l)).fold(0.0, f64::max);
        let (x0, x1) = (LEFT + label_w.min(TEXT_W / 3.0) + 6.0, RIGHT - 4.0);

        // The legend is laid out first: its height decides whether the chart fits here.
        let mut legend = Vec::new();
        let (mut lx, mut rows) = (LEFT, usize::from(c.series.len() > 1));
        let named = if rows > 0 { &c.series[..] } else { &[] };
        for (i, s) in named.iter().enumerate() {
            let name = fit(&winansi(&s.name), &SMALL, TEXT_W - 11.0);
            let w = SMALL.width(&name) + 25.0;
            if lx + w > RIGHT && lx > LEFT {
                (lx, rows) = (LEFT, rows + 1);
            }
            legend.push((lx, rows - 1, PALETTE[i % PALETTE.len()], name));
            lx += w;
        }
        let title = fit(&winansi(&c.title), &BODY_BOLD, TEXT_W);
        let unit = fit(&winansi(&c.unit), &SMALL, TEXT_W);
        let unit_h = if unit.is_empty() { 0.0 } else { SMALL.lead };
        self.gap(12.0);
        self.need(BODY_BOLD.lead + unit_h + 10.0 + PLOT_H + 16.0 + rows as f64 * 12.0);
        let out = &mut self.page;
        text(out, &BODY_BOLD, LEFT, BODY_BOLD.baseline(self.y), &title);
        let small = |out: &mut Vec<u8>, x, y, s: &[u8]| text(out, &SMALL, x, y, s);
        small(
            out,
            LEFT,
            SMALL.baseline(self.y - BODY_BOLD.lead - 4.0),
            &unit,
        );
        let top = self.y - BODY_BOLD.lead - unit_h - 10.0;
        let bottom = top - PLOT_H;
        // Halving first keeps the span finite for values near f64::MAX.
        let y_of = |v: f64| {
            (bottom + (v / 2.0 - lo / 2.0) / (hi / 2.0 - lo / 2.0) * PLOT_H).clamp(bottom, top)
        };
        for (&t, label) in ticks.iter().zip(&labels) {
            rule(out, x0, x1, y_of(t), if t == 0.0 { RULE } else { GRID });
            small(out, x0 - 4.0 - SMALL.width(label), y_of(t) - 2.5, label);
        }
        let slot = (x1 - x0) / n.max(1) as f64;
        let x_of = |i: usize| x0 + (i as f64 + 0.5) * slot;
        let every = n.div_ceil(MAX_X_LABELS).max(1);
        for (i, label) in c.x_labels.iter().enumerate().step_by(every) {
            let label = fit(&winansi(label), &SMALL, slot * every as f64 - 4.0);
            let x = x_of(i) - SMALL.width(&label) / 2.0;
            small(out, x, bottom - 10.0, &label);
        }
        let (zero, group) = (y_of(0.0), slot * 0.7);
        let bar_w = group / c.series.len().max(1) as f64;
        for (si, s) in c.series.iter().enumerate() {
            let ink = PALETTE[si % PALETTE.len()];
            let points: Vec<_> = s
                .values
                .iter()
                .enumerate()
                .map(|(i, v)| finite(v).map(|v| (i, y_of(v))))
                .collect();
            if c.kind == ChartKind::Bar {
                for &(i, y) in points.iter().flatten() {
                    let x = x_of(i) - group / 2.0 + si as f64 * bar_w;
                    let (w, h) = ((bar_w - 0.6).max(0.3), (y - zero).abs());
                    rect(out, x, y.min(zero), w, h, ink);
                }
                continue;
            }
            // A gap ends a line; a point between two gaps would be invisible as a path, so
            // it gets a dot.
            for run in points.split(Option::is_none).filter(|r| !r.is_empty()) {
                if let [Some((i, y))] = run {
                    rect(out, x_of(*i) - 1.5, y - 1.5, 3.0, 3.0, ink);
                    continue;
                }
                let _ = write!(out, "{} RG 1.5 w 1 j", colour(ink));
                for (j, &(i, y)) in run.iter().flatten().enumerate() {
                    let op = if j == 0 { "m" } else { "l" };
                    let _ = write!(out, " {} {op}", nums(&[x_of(i), y]));
                }
                out.extend_from_slice(b" S\n");
            }
        }
        self.y = bottom - 16.0;
        for (x, row, ink, name) in legend {
            let top = self.y - row as f64 * 12.0;
            rect(out, x, top - 9.0, 7.0, 7.0, ink);
            small(out, x + 11.0, top - 8.5, &name);
        }
        self.y -= rows as f64 * 12.0;
    }

    /// The finished pages, each with its footer.
    fn finish(mut self, title: &[u8]) -> Vec<Vec<u8>> {
        self.done.push(take(&mut self.page));
        let count = self.done.len();
        for (i, page) in self.done.iter_mut().enumerate() {
            let label = format!("Page {} of {count}", i + 1);
            let label_w = FOOTER.width(label.as_bytes());
            let title = fit(title, &FOOTER, TEXT_W - label_w - 24.0);
            text(page, &FOOTER, LEFT, FOOTER_Y, &title);
            text(page, &FOOTER, RIGHT - label_w, FOOTER_Y, label.as_bytes());
        }
        self.done
    }
}

/// Column widths that fill `avail`. Narrow content is stretched alike; when it is too wide,
/// every column keeps up to an equal share and only the excess of the wide ones is shrunk,
/// so a long text column cannot squeeze a number column into wrapping.
fn column_widths(natural: &[f64], avail: f64) -> Vec<f64> {
    let total: f64 = natural.iter().sum();
    let share = if total <= avail {
        0.0
    } else {
        avail / natural.len() as f64
    };
    let kept: f64 = natural.iter().map(|w| w.min(share)).sum();
    let stretch = (avail - kept) / (total - kept).max(1e-9);
    natural
        .iter()
        .map(|&w| w.min(share) + (w - w.min(share)) * stretch)
        .collect()
}

/// The y axis for `values`: from 0 (or below, for negatives) to a round maximum, with
/// gridlines at steps of 1, 2, 2.5 or 5 × 10^k. Returns (min, max, gridline values).
fn scale(values: impl Iterator<Item = f64>) -> (f64, f64, Vec<f64>) {
    let fallback = (0.0, 1.0, vec![0.0, 0.25, 0.5, 0.75, 1.0]);
    let (lo, hi) = values.fold((0.0_f64, 0.0_f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let raw = hi / 4.0 - lo / 4.0;
    if raw <= 0.0 || !raw.is_finite() {
        return fallback;
    }
    let exp = raw.log10().floor() as i32;
    let pow = 10f64.powi(exp.abs());
    // Dividing by an exact power of ten keeps labels like 0.3 free of binary noise.
    let at = |k: f64| if exp >= 0 { k * pow } else { k / pow };
    let mut steps = [1.0, 2.0, 2.5, 5.0].into_iter();
    let m = steps.find(|m| at(*m) >= raw * (1.0 - 1e-9)).unwrap_or(10.0);
    let step = at(m);
    let (first, last) = ((lo / step).floor() as i64, (hi / step).ceil() as i64);
    let ticks: Vec<f64> = (first..=last).map(|k| at(k as f64 * m)).collect();
    match (ticks.first(), ticks.last()) {
        (Some(&a), Some(&b)) if a < b && b.is_finite() && a.is_finite() && ticks.len() <= 8 => {
            (a, b, ticks)
        }
        _ => fallback,
    }
}

/// The document title for `/Info`: a literal string when ASCII, else UTF-16BE with a BOM so
/// viewers show accents and symbols exactly.
fn info_string(s: &str) -> Vec<u8> {
    let clean: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut out = Vec::new();
    if clean.is_ascii() {
        out.push(b'(');
        escape(&mut out, clean.as_bytes());
        out.push(b')');
    } else {
        out.extend_from_slice(b"<FEFF");
        for unit in clean.encode_utf16() {
            let _ = write!(out, "{unit:04X}");
        }
        out.push(b'>');
    }
    out
}

fn deflate(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
    z.write_all(data)?;
    z.finish()
}

/// Objects: 1 catalog, 2 page tree, 3–4 fonts, 5 info, then each page and its contents.
fn write_file(title: &str, pages: &[Vec<u8>]) -> Vec<u8> {
    let kids: Vec<String> = (0..pages.len())
        .map(|i| format!("{} 0 R", 6 + 2 * i))
        .collect();
    let (count, kids) = (pages.len(), kids.join(" "));
    let mut objects = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        format!("<< /Type /Pages /Kids [{kids}] /Count {count} >>").into_bytes(),
    ];
    for font in ["Helvetica", "Helvetica-Bold"] {
        let dict = "/Type /Font /Subtype /Type1 /Encoding /WinAnsiEncoding";
        objects.push(format!("<< {dict} /BaseFont /{font} >>").into_bytes());
    }
    let title = info_string(title);
    objects.push([b"<< /Title ", &title[..], b" /Producer (Liftoff) >>"].concat());
    for ops in pages {
        let contents = objects.len() + 2;
        let resources = "<< /Font << /F1 3 0 R /F2 4 0 R >> >>";
        objects.push(
            format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {PAGE_W} {PAGE_H}] \
                 /Resources {resources} /Contents {contents} 0 R >>"
            )
            .into_bytes(),
        );
        // Writing into memory cannot fail; were it to, the stream goes out uncompressed.
        let (data, filter) = match deflate(ops) {
            Ok(z) => (z, " /Filter /FlateDecode"),
            Err(_) => (ops.clone(), ""),
        };
        let head = format!("<< /Length {}{filter} >>\nstream\n", data.len());
        objects.push([head.as_bytes(), &data, b"\nendstream"].concat());
    }
    let mut out = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut xref = format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1);
    for (i, body) in objects.iter().enumerate() {
        let _ = writeln!(xref, "{:010} 00000 n ", out.len());
        let _ = writeln!(out, "{} 0 obj", i + 1);
        out.extend_from_slice(body);
        out.extend_from_slice(b"\nendobj\n");
    }
    let (size, at) = (objects.len() + 1, out.len());
    let _ = write!(
        xref,
        "trailer\n<< /Size {size} /Root 1 0 R /Info 5 0 R >>\nstartxref\n{at}\n%%EOF\n"
    );
    out.extend_from_slice(xref.as_bytes());
    out
}
