use std::io::Read as _;

use super::*;
use crate::document::{Cell, Column, Series};

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| from + p)
}

/// The decimal number `bytes` start with.
fn number(bytes: &[u8]) -> usize {
    let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    let parsed = std::str::from_utf8(&bytes[..digits]).map(str::parse);
    parsed.ok().and_then(Result::ok).expect("number")
}

/// Checks the file's frame and that every xref entry points at its object; returns the
/// number of xref entries.
fn check_structure(pdf: &[u8]) -> usize {
    assert!(pdf.starts_with(b"%PDF-1.4\n") && pdf.ends_with(b"%%EOF\n"));
    let at = find(pdf, b"\nxref\n0 ", 0).expect("xref") + 1;
    let start = find(pdf, b"startxref\n", at).expect("startxref") + 10;
    assert_eq!(number(&pdf[start..]), at, "startxref points at the table");
    let size = number(&pdf[at + 7..]);
    let table = find(pdf, b"\n0000000000 65535 f \n", at).expect("free entry") + 21;
    for (id, entry) in (1..size).zip(pdf[table..].chunks(20)) {
        assert!(entry.ends_with(b" 00000 n \n"), "{entry:?}");
        let obj = format!("{id} 0 obj\n");
        assert!(
            pdf[number(entry)..].starts_with(obj.as_bytes()),
            "object {id}"
        );
    }
    let trailer = format!("trailer\n<< /Size {size} /Root 1 0 R /Info 5 0 R >>");
    assert!(pdf[table + 20 * (size - 1)..].starts_with(trailer.as_bytes()));
    size
}

/// The decompressed content stream of each page, in page order.
fn contents(pdf: &[u8]) -> Vec<Vec<u8>> {
    let (mut out, mut from) = (Vec::new(), 0);
    while let Some(i) = find(pdf, b"/Length ", from) {
        let len = number(&pdf[i + 8..]);
        let data = find(pdf, b"stream\n", i).expect("stream") + 7;
        assert!(
            pdf[data + len..].starts_with(b"\nendstream"),
            "/Length is exact"
        );
        let mut raw = Vec::new();
        let inflated = flate2::read::ZlibDecoder::new(&pdf[data..data + len]).read_to_end(&mut raw);
        assert!(inflated.is_ok());
        out.push(raw);
        from = data + len;
    }
    out
}

#[derive(Debug)]
struct Shown {
    x: f64,
    font: String,
    size: f64,
    text: Vec<u8>,
}

/// The strings a content stream shows, with their x position and font. The writer puts
/// each `BT … Tj ET` on its own line (string bytes below 32 are octal-escaped), so a line
/// is one string.
fn shown(ops: &[u8]) -> Vec<Shown> {
    let mut out = Vec::new();
    for line in ops
        .split(|&b| b == b'\n')
        .filter(|l| l.ends_with(b") Tj ET"))
    {
        let open = line.iter().position(|&b| b == b'(').expect("string");
        let head = std::str::from_utf8(&line[..open]).expect("ascii operators");
        let t: Vec<&str> = head.split_whitespace().collect();
        assert_eq!(t[t.len() - 1], "Td", "{head}");
        let (mut text, mut bytes) = (Vec::new(), line[open + 1..line.len() - 7].iter());
        while let Some(&b) = bytes.next() {
            match (b, bytes.clone().next()) {
                (b'\\', Some(d)) if d.is_ascii_digit() => {
                    let oct: String = bytes.by_ref().take(3).map(|&d| char::from(d)).collect();
                    text.push(u8::from_str_radix(&oct, 8).expect("octal"));
                }
                (b'\\', Some(&c)) => {
                    bytes.next();
                    text.push(c);
                }
                (b'(' | b')' | b'\\', _) => panic!("unescaped delimiter in {line:?}"),
                _ => text.push(b),
            }
        }
        let num = |i: usize| t[t.len() - i].parse::<f64>().expect("number");
        let font = t[t.len() - 6].trim_start_matches('/').to_owned();
        out.push(Shown {
            x: num(3),
            font,
            size: num(5),
            text,
        });
    }
    out
}

/// Each page's shown strings, decoded from WinAnsi.
fn page_texts(pdf: &[u8]) -> Vec<Vec<String>> {
    let text = |s: Shown| s.text.iter().map(|&b| fonts::decode(b)).collect();
    contents(pdf)
        .iter()
        .map(|c| shown(c).into_iter().map(text).collect())
        .collect()
}

fn page_count(pdf: &[u8]) -> usize {
    String::from_utf8_lossy(pdf).matches("/Type /Page ").count()
}

const PARAGRAPH: &str =
    "Traffic rose steadily through the week while the error budget held above target.";

fn long_report() -> Document {
    let row = |i: usize| {
        let status = [
            Cell::toned("ok", Tone::Good),
            Cell::toned("slow", Tone::Bad),
        ];
        let status = status[usize::from(i.is_multiple_of(10))].clone();
        vec![
            format!("GET /api/launches/{i}").into(),
            (i * 37).to_string().into(),
            status,
        ]
    };
    let series = |name: &str, f: fn(usize) -> Option<f64>| {
        let values = (0..14).map(f).collect();
        Series {
            name: name.into(),
            values,
        }
    };
    let columns = vec![
        Column::left("Endpoint"),
        Column::right("Requests"),
        Column::left("Status"),
    ];
    let text = |s: &str| s.to_owned();
    Document {
        title: text("Weekly report"),
        subtitle: text("1 – 7 June"),
        blocks: vec![
            Block::Heading {
                text: text("Summary"),
            },
            Block::Paragraph {
                text: text(PARAGRAPH),
            },
            Block::Callout {
                tone: Tone::Warning,
                title: text("Latency drift"),
                text: text("p95 +12 %."),
            },
            Block::Subheading {
                text: text("Endpoints"),
            },
            Block::Table(Table {
                columns,
                rows: (0..120).map(row).collect(),
                empty: String::new(),
            }),
            Block::Bullets {
                items: vec![text("First point"), text("Second point")],
            },
            Block::Chart(Chart {
                title: text("Requests per day"),
                kind: ChartKind::Line,
                unit: text("req/s"),
                x_labels: (1..=14).map(|d| format!("Jun {d}")).collect(),
                series: vec![
                    series("api", |i| (i != 5).then_some(i as f64 * 120.0)),
                    series("web", |i| Some((i * i) as f64)),
                ],
            }),
        ],
    }
}

#[test]
fn file_structure_and_offsets_are_exact() {
    let pdf = pdf(&long_report());
    assert_eq!(check_structure(&pdf), 6 + 2 * page_count(&pdf));
    assert!(find(&pdf, b"/Title (Weekly report) /Producer (Liftoff)", 0).is_some());
}

#[test]
fn every_text_is_shown_and_the_table_header_repeats() {
    let pdf = pdf(&long_report());
    let (pages, n) = (page_texts(&pdf), page_count(&pdf));
    assert!(
        n >= 3 && pages.len() == n,
        "120 rows need several pages: {n}"
    );
    let has = |page: &[String], s: &str| page.iter().any(|t| t == s);
    let all = pages.concat();
    let words: Vec<&str> = all.iter().flat_map(|t| t.split(' ')).collect();
    assert!(
        PARAGRAPH.split(' ').all(|w| words.contains(&w)),
        "{words:?}"
    );
    let texts = "Weekly report|1 – 7 June|Summary|Endpoints|Latency drift|p95 +12 %.|First point|\
                 Second point|Requests per day|req/s|api|web|slow|ok|Jun 1|Jun 13|1,500";
    for s in texts.split('|') {
        assert!(has(&all, s), "missing {s}");
    }
    for i in 0..120 {
        assert!(has(&all, &format!("GET /api/launches/{i}")), "row {i}");
        assert!(has(&all, &(i * 37).to_string()), "row {i}");
    }
    assert!(has(&all, &format!("Page 1 of {n}")) && has(&all, &format!("Page {n} of {n}")));
    assert!(
        !has(&pages[0], "GET /api/launches/119"),
        "the table continues"
    );
    for page in pages
        .iter()
        .filter(|p| p.iter().any(|t| t.starts_with("GET ")))
    {
        let header = ["Endpoint", "Requests", "Status"];
        assert!(header.iter().all(|h| has(page, h)), "{page:?}");
    }
}

#[test]
fn right_aligned_numbers_end_at_the_column_edge() {
    let doc = Document {
        blocks: vec![Block::Table(Table {
            columns: vec![Column::left("Name"), Column::right("Value")],
            rows: vec![
                vec!["a".into(), "7".into()],
                vec!["b".into(), "12,345.67".into()],
            ],
            empty: String::new(),
        })],
        ..Document::default()
    };
    let shown = shown(&contents(&pdf(&doc)).concat());
    let get = |s: &str| shown.iter().find(|t| t.text == s.as_bytes()).expect(s);
    let end = |s: &str| get(s).x + Font::Regular.width(s.as_bytes(), get(s).size);
    assert_eq!(get("7").font, "F1");
    assert!((end("7") - end("12,345.67")).abs() < 0.5);
    assert!(get("7").x > get("12,345.67").x + 20.0, "right, not left");
}

#[test]
fn text_maps_to_winansi_with_fallbacks_and_escapes() {
    assert_eq!(winansi("≥ 99.9 % → ok (é)"), b">= 99.9 % -> ok (\xe9)");
    assert_eq!(
        winansi("a\u{7}b\tc\u{1b}\u{85}–…•×°±µ≤≈−✓☃"),
        b"ab c\x96\x85\x95\xd7\xb0\xb1\xb5<=~-v?"
    );
    let mut out = Vec::new();
    escape(&mut out, br"a(b)\c");
    assert_eq!(out, br"a\(b\)\\c");
    let doc = Document {
        title: r"x (y) \z".into(),
        ..Document::default()
    };
    let ops = contents(&pdf(&doc)).concat();
    assert!(find(&ops, br"(x \(y\) \\z) Tj", 0).is_some());
    assert!(shown(&ops).iter().any(|t| t.text == br"x (y) \z"));
    assert_eq!(info_string("Café\n"), b"<FEFF00430061006600E90020>");
}

#[test]
fn widths_are_helveticas() {
    let hello = 722.0 + 556.0 + 222.0 * 2.0 + 556.0;
    assert_eq!(Font::Regular.width(b"Hello", 1000.0), hello);
    assert_eq!(Font::Bold.width(b"W@", 1000.0), 944.0 + 975.0);
    let extras = 556.0 + 1000.0 + 350.0 + 1000.0 + 584.0 + 556.0;
    assert_eq!(
        Font::Regular.width(b"\x96\x97\x95\x85\xd7\xe9", 1000.0),
        extras
    );
}

#[test]
fn wrapping_respects_the_width_and_breaks_long_words() {
    let lines = wrap(&[b'm'; 200], &BODY, 100.0);
    assert!(lines.len() > 1 && lines.iter().all(|l| BODY.width(l) <= 100.0));
    assert_eq!(lines.concat().len(), 200);
    assert_eq!(wrap(b"  a  b ", &BODY, 100.0), vec![b"a b".to_vec()]);
}

#[test]
fn axis_steps_are_round() {
    assert_eq!(
        scale([0.0, 100.0].into_iter()),
        (0.0, 100.0, vec![0.0, 25.0, 50.0, 75.0, 100.0])
    );
    assert_eq!(scale([0.27].into_iter()).2, vec![0.0, 0.1, 0.2, 0.3]);
    let (lo, hi, ticks) = scale([-30.0, 90.0].into_iter());
    assert!(lo <= -30.0 && hi >= 90.0 && (4..=7).contains(&ticks.len()));
}

#[test]
fn same_document_same_bytes() {
    assert_eq!(pdf(&long_report()), pdf(&long_report()));
}

#[test]
fn hostile_input_still_gives_a_valid_file() {
    let nasty = format!("ctl\u{0}\u{8}\r\n\u{7f}\u{85} end {}", "x".repeat(20_000));
    let n = || nasty.clone();
    let chart = |values: &[Option<f64>], kind| {
        let series = [n(), "s".into()].map(|name| Series {
            name,
            values: values.to_vec(),
        });
        let (title, unit, x_labels) = (n(), n(), vec![n(); 3]);
        Block::Chart(Chart {
            title,
            kind,
            unit,
            x_labels,
            series: series.into(),
        })
    };
    let table = |columns, rows| {
        Block::Table(Table {
            columns,
            rows,
            empty: n(),
        })
    };
    let (heading, paragraph) = (Block::Heading { text: n() }, Block::Paragraph { text: n() });
    let blocks = vec![
        heading,
        paragraph,
        Block::Callout {
            tone: Tone::Bad,
            title: n(),
            text: n(),
        },
        table(
            vec![Column::left(n()), Column::right("n")],
            vec![vec![n().into()], vec!["1".into(); 3]],
        ),
        table(vec![], vec![vec!["orphan".into()]]),
        table(vec![Column::left("a")], vec![]),
        Block::Bullets {
            items: vec![n(), String::new()],
        },
        chart(&[None; 3], ChartKind::Line),
        chart(
            &[Some(f64::NAN), Some(f64::INFINITY), Some(f64::NEG_INFINITY)],
            ChartKind::Bar,
        ),
        chart(
            &[Some(f64::MAX), Some(-f64::MAX), Some(1e-320)],
            ChartKind::Line,
        ),
        chart(&[Some(-5.0), None, Some(3.0), Some(1.0)], ChartKind::Bar),
        Block::Chart(Chart::default()),
    ];
    let docs = [
        Document::default(),
        Document {
            title: n(),
            subtitle: n(),
            blocks,
        },
    ];
    for doc in &docs {
        let pdf = pdf(doc);
        check_structure(&pdf);
        for ops in contents(&pdf) {
            assert!(!ops.iter().any(|&b| b < 32 && b != b'\n'), "control byte");
            assert!(find(&ops, b"NaN", 0).is_none() && find(&ops, b"inf", 0).is_none());
        }
    }
    assert_eq!(page_count(&pdf(&docs[0])), 1);
    let texts = page_texts(&pdf(&docs[1])).concat();
    assert!(
        texts.iter().any(|t| t == "ctl end"),
        "controls dropped, breaks are spaces"
    );
    let xs: usize = texts.iter().map(|t| t.matches('x').count()).sum();
    assert!(
        xs >= 20_000 * 4,
        "the long word is broken over lines, not cut"
    );
}
