//! The two standard fonts the PDF uses, their glyph widths, and the mapping from Rust text to
//! the bytes they can show. Viewers supply Helvetica themselves, so the file carries no font,
//! but the layout must still know each glyph's advance to wrap and right-align text.

/// Which of the two fonts; the variant names the page resource (`/F1`, `/F2`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Font {
    Regular,
    Bold,
}

impl Font {
    pub fn resource(self) -> &'static str {
        match self {
            Font::Regular => "F1",
            Font::Bold => "F2",
        }
    }

    /// The advance of WinAnsi `text` at `size` points.
    pub fn width(self, text: &[u8], size: f64) -> f64 {
        let table = match self {
            Font::Regular => &REGULAR,
            Font::Bold => &BOLD,
        };
        let units: u32 = text
            .iter()
            .map(|&b| {
                b.checked_sub(32)
                    .map_or(0, |i| u32::from(table[usize::from(i)]))
            })
            .sum();
        f64::from(units) * size / 1000.0
    }
}

/// `s` as WinAnsi bytes. Line breaks and tabs become spaces (the layout wraps text itself),
/// other control and invisible formatting characters are dropped, and characters the
/// encoding lacks get an ASCII stand-in so a threshold like `≥ 99 %` keeps its meaning.
pub fn winansi(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    for c in s.chars() {
        match c {
            ' '..='~' => out.push(c as u8),
            '\u{ad}' => {}
            // Latin-1's upper half is where WinAnsi keeps the same characters.
            '\u{a0}'..='\u{ff}' => out.push(c as u8),
            '\t' | '\n' | '\r' | '\u{2028}' | '\u{2029}' | '\u{2000}'..='\u{200a}' => {
                out.push(b' ');
            }
            '\u{202f}' | '\u{205f}' | '\u{3000}' => out.push(b' '),
            '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{206f}' => {}
            '\u{feff}' => {}
            c if c.is_control() => {}
            c => match cp1252(c) {
                Some(b) => out.push(b),
                None => out.extend_from_slice(fallback(c).as_bytes()),
            },
        }
    }
    out
}

/// The characters WinAnsi puts in 0x80–0x9F, where Latin-1 has control codes (`\0`: unused).
const CP1252_HIGH: [char; 32] = [
    '€', '\0', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\0', 'Ž', '\0', //
    '\0', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\0', 'ž', 'Ÿ',
];

#[cfg(test)]
pub fn decode(b: u8) -> char {
    if (0x80..0xa0).contains(&b) {
        CP1252_HIGH[usize::from(b - 0x80)]
    } else {
        char::from(b)
    }
}

fn cp1252(c: char) -> Option<u8> {
    let i = CP1252_HIGH.iter().position(|&x| x == c)?;
    u8::try_from(0x80 + i).ok()
}

fn fallback(c: char) -> &'static str {
    match c {
        '≥' => ">=",
        '≤' => "<=",
        '≠' => "!=",
        '→' => "->",
        '←' => "<-",
        '⇒' => "=>",
        '≈' => "~",
        '−' | '‐' | '‑' | '‒' => "-",
        '′' => "'",
        '″' => "\"",
        '✓' | '✔' => "v",
        '✗' | '✘' => "x",
        _ => "?",
    }
}

/// Helvetica, WinAnsi codes 32–255 (0 for codes never written).
#[rustfmt::skip]
const REGULAR: [u16; 224] = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278,
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556,
    1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778,
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556,
    333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556,
    556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584, 0,
    556, 0, 222, 556, 333, 1000, 556, 556, 333, 1000, 667, 333, 1000, 0, 611, 0,
    0, 222, 222, 333, 333, 350, 556, 1000, 333, 1000, 500, 333, 944, 0, 500, 667,
    278, 333, 556, 556, 556, 556, 260, 556, 333, 737, 370, 556, 584, 333, 737, 333,
    400, 584, 333, 333, 333, 556, 537, 278, 333, 333, 365, 556, 834, 834, 834, 611,
    667, 667, 667, 667, 667, 667, 1000, 722, 667, 667, 667, 667, 278, 278, 278, 278,
    722, 722, 778, 778, 778, 778, 778, 584, 778, 722, 722, 722, 722, 667, 667, 611,
    556, 556, 556, 556, 556, 556, 889, 500, 556, 556, 556, 556, 278, 278, 278, 278,
    556, 556, 556, 556, 556, 556, 556, 584, 611, 556, 556, 556, 556, 500, 556, 500,
];
/// Helvetica-Bold, WinAnsi codes 32–255 (0 for codes never written).
#[rustfmt::skip]
const BOLD: [u16; 224] = [
    278, 333, 474, 556, 556, 889, 722, 238, 333, 333, 389, 584, 278, 333, 278, 278,
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 333, 333, 584, 584, 584, 611,
    975, 722, 722, 722, 722, 667, 611, 778, 722, 278, 556, 722, 611, 833, 722, 778,
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 333, 278, 333, 584, 556,
    333, 556, 611, 556, 611, 556, 333, 611, 611, 278, 278, 556, 278, 889, 611, 611,
    611, 611, 389, 556, 333, 611, 556, 778, 556, 556, 500, 389, 280, 389, 584, 0,
    556, 0, 278, 556, 500, 1000, 556, 556, 333, 1000, 667, 333, 1000, 0, 611, 0,
    0, 278, 278, 500, 500, 350, 556, 1000, 333, 1000, 556, 333, 944, 0, 500, 667,
    278, 333, 556, 556, 556, 556, 280, 556, 333, 737, 370, 556, 584, 333, 737, 333,
    400, 584, 333, 333, 333, 611, 556, 278, 333, 333, 365, 556, 834, 834, 834, 611,
    722, 722, 722, 722, 722, 722, 1000, 722, 667, 667, 667, 667, 278, 278, 278, 278,
    722, 722, 778, 778, 778, 778, 778, 584, 778, 722, 722, 722, 722, 667, 667, 611,
    556, 556, 556, 556, 556, 556, 889, 556, 556, 556, 556, 556, 278, 278, 278, 278,
    611, 611, 611, 611, 611, 611, 611, 584, 611, 611, 611, 611, 611, 556, 611, 556,
];
