//! `/favicon.ico`: Liftoff's icon (a white arrow taking off from a blue tile), drawn here as
//! a 32×32 ICO rather than vendored, so it needs no asset pipeline and browsers stop asking
//! for a file that was not there.

use std::sync::OnceLock;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

const SIZE: u32 = 32;
const BLUE: [u8; 4] = [0xeb, 0x63, 0x25, 0xff]; // #2563eb as BGRA
const WHITE: [u8; 4] = [0xff, 0xff, 0xff, 0xff];
const CLEAR: [u8; 4] = [0, 0, 0, 0];

/// The colour of pixel (`x`, `y`), `y` down from the top.
fn pixel(x: i32, y: i32) -> [u8; 4] {
    let (last, r) = (SIZE as i32 - 1, 6);
    // Rounded corners: outside the quarter circle of each corner is transparent.
    let cx = if x < r {
        r
    } else if x > last - r {
        last - r
    } else {
        x
    };
    let cy = if y < r {
        r
    } else if y > last - r {
        last - r
    } else {
        y
    };
    if (x - cx).pow(2) + (y - cy).pow(2) > r * r {
        return CLEAR;
    }
    // The arrow: a head from y 5 to 17 widening to 8 either side, then a stem to y 26.
    let head = (5..=17).contains(&y) && (x - 16).abs() <= (y - 5) * 2 / 3;
    let stem = (17..=26).contains(&y) && (13..=18).contains(&x);
    if head || stem { WHITE } else { BLUE }
}

/// The icon as an ICO file: one 32-bit BMP image with its (unused, all-zero) AND mask.
pub fn ico() -> &'static [u8] {
    static ICO: OnceLock<Vec<u8>> = OnceLock::new();
    ICO.get_or_init(|| {
        let pixels = SIZE * SIZE * 4;
        let mask = SIZE * SIZE.div_ceil(32) * 4;
        let image = 40 + pixels + mask;
        let mut out = Vec::with_capacity(22 + image as usize);
        // ICONDIR: reserved, type 1 (icon), one image.
        for v in [0u16, 1, 1] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        // ICONDIRENTRY: 32×32, no palette, 1 plane, 32 bits, size, offset.
        out.extend_from_slice(&[SIZE as u8, SIZE as u8, 0, 0]);
        out.extend_from_slice(&1u16.to_le_bytes());
        out.extend_from_slice(&32u16.to_le_bytes());
        out.extend_from_slice(&image.to_le_bytes());
        out.extend_from_slice(&22u32.to_le_bytes());
        // BITMAPINFOHEADER; the height counts the colour image and the mask.
        out.extend_from_slice(&40u32.to_le_bytes());
        out.extend_from_slice(&(SIZE as i32).to_le_bytes());
        out.extend_from_slice(&(2 * SIZE as i32).to_le_bytes());
        out.extend_from_slice(&1u16.to_le_bytes());
        out.extend_from_slice(&32u16.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&(pixels + mask).to_le_bytes());
        out.extend_from_slice(&[0; 16]);
        // Rows bottom-up.
        for y in (0..SIZE as i32).rev() {
            for x in 0..SIZE as i32 {
                out.extend_from_slice(&pixel(x, y));
            }
        }
        out.resize(out.len() + mask as usize, 0);
        out
    })
}

pub async fn serve() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("image/x-icon"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=604800"),
            ),
        ],
        ico(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_icon_is_a_well_formed_ico() {
        let ico = ico();
        assert_eq!(&ico[..6], &[0, 0, 1, 0, 1, 0]);
        let size = u32::from_le_bytes(ico[14..18].try_into().unwrap()) as usize;
        let offset = u32::from_le_bytes(ico[18..22].try_into().unwrap()) as usize;
        assert_eq!(offset + size, ico.len());
        assert_eq!(ico.len(), 22 + 40 + 32 * 32 * 4 + 32 * 4);
        // The centre of the arrow is white, a corner transparent, the tile blue.
        assert_eq!(pixel(16, 12), WHITE);
        assert_eq!(pixel(0, 0), CLEAR);
        assert_eq!(pixel(4, 28), BLUE);
    }
}
