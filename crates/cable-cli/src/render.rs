//! Renders a `FIDO:/` string as a QR code for a terminal, a PNG file or an SVG file.
//!
//! The string is all digits after an alphanumeric prefix, so the qrcode crate picks its
//! dense numeric/alphanumeric modes on its own; we only choose the error-correction level
//! (low, as Chromium does, to keep the code small enough for terminal display).

use qrcode::{EcLevel, QrCode};
use std::io::Cursor;

/// Quiet zone in modules around the code; scanners need four.
const QUIET_ZONE: usize = 4;

/// Why a QR code could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("the text is too long to fit in a QR code ({len} bytes)")]
    TooLong { len: usize },
    #[error("could not encode the PNG image: {0}")]
    Png(#[from] image::ImageError),
}

/// How the terminal output paints the modules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TerminalStyle {
    /// Black modules on an explicit white background: reads the same on dark and light
    /// terminal themes.
    Ansi,
    /// No escape codes (for `NO_COLOR` or a non-terminal): blocks are the dark modules, so it
    /// reads correctly only where the background is light.
    Plain,
}

/// A QR code ready to be drawn in any of the output formats.
pub struct Rendered {
    code: QrCode,
}

impl std::fmt::Debug for Rendered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rendered")
            .field("width", &self.code.width())
            .finish()
    }
}

impl Rendered {
    pub fn new(text: &str) -> Result<Self, RenderError> {
        let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::L)
            .map_err(|_| RenderError::TooLong { len: text.len() })?;
        Ok(Self { code })
    }

    /// Side of the code in modules, without the quiet zone.
    #[cfg(test)]
    pub fn width(&self) -> usize {
        self.code.width()
    }

    fn is_dark(&self, x: isize, y: isize) -> bool {
        let w = self.code.width() as isize;
        if x < 0 || y < 0 || x >= w || y >= w {
            return false;
        }
        self.code[(x as usize, y as usize)] == qrcode::Color::Dark
    }

    /// Two module rows per text line using half blocks, so the code keeps a square aspect.
    pub fn terminal(&self, style: TerminalStyle) -> String {
        let q = QUIET_ZONE as isize;
        let w = self.code.width() as isize;
        let mut out = String::new();
        let mut y = -q;
        while y < w + q {
            if style == TerminalStyle::Ansi {
                out.push_str("\x1b[30;107m");
            }
            for x in -q..w + q {
                let top = self.is_dark(x, y);
                let bottom = y + 1 < w + q && self.is_dark(x, y + 1);
                out.push(match (top, bottom) {
                    (true, true) => '█',
                    (true, false) => '▀',
                    (false, true) => '▄',
                    (false, false) => ' ',
                });
            }
            if style == TerminalStyle::Ansi {
                out.push_str("\x1b[0m");
            }
            out.push('\n');
            y += 2;
        }
        out
    }

    /// A PNG with `scale` pixels per module and a quiet zone.
    pub fn png(&self, scale: u32) -> Result<Vec<u8>, RenderError> {
        let image = self
            .code
            .render::<image::Luma<u8>>()
            .quiet_zone(true)
            .module_dimensions(scale, scale)
            .build();
        let mut bytes = Vec::new();
        image.write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Png)?;
        Ok(bytes)
    }

    /// 8-bit RGB pixels, `scale` per module, with the quiet zone: the side in pixels and
    /// the rows. The pixels are the QR code, secret and all, so they wipe themselves.
    pub fn rgb(&self, scale: usize) -> (usize, zeroize::Zeroizing<Vec<u8>>) {
        let q = QUIET_ZONE as isize;
        let modules = self.code.width() + 2 * QUIET_ZONE;
        let side = modules * scale;
        let mut rgb = zeroize::Zeroizing::new(Vec::with_capacity(side * side * 3));
        for py in 0..side {
            for px in 0..side {
                let dark = self.is_dark((px / scale) as isize - q, (py / scale) as isize - q);
                let level = if dark { 0 } else { 255 };
                rgb.extend_from_slice(&[level; 3]);
            }
        }
        (side, rgb)
    }

    /// A standalone SVG document.
    pub fn svg(&self) -> String {
        self.code
            .render::<qrcode::render::svg::Color<'_>>()
            .quiet_zone(true)
            .min_dimensions(256, 256)
            .build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const URI: &str = "FIDO:/339672261612013183221957471183098467931149967814571112821702729123236352175711105404400564050807298275025421010491811870057950297627316200265340480783106107096654083332";

    #[test]
    fn terminal_output_is_square_with_quiet_zone() {
        let r = Rendered::new(URI).unwrap();
        let text = r.terminal(TerminalStyle::Plain);
        let lines: Vec<&str> = text.lines().collect();
        let side = r.width() + 2 * QUIET_ZONE;
        assert_eq!(lines.len(), side.div_ceil(2));
        assert!(lines.iter().all(|l| l.chars().count() == side));
        // Quiet zone: first line blank, and the finder pattern starts after four columns.
        assert!(lines[0].chars().all(|c| c == ' '));
        assert!(lines[2].starts_with("    █"));
    }

    #[test]
    fn ansi_output_sets_explicit_colours_per_line() {
        let r = Rendered::new(URI).unwrap();
        let text = r.terminal(TerminalStyle::Ansi);
        assert!(text
            .lines()
            .all(|l| l.starts_with("\x1b[30;107m") && l.ends_with("\x1b[0m")));
    }

    #[test]
    fn png_is_a_png_of_the_expected_size() {
        let r = Rendered::new(URI).unwrap();
        let bytes = r.png(4).unwrap();
        let img = image::load_from_memory(&bytes).unwrap();
        let side = (r.width() + 2 * QUIET_ZONE) as u32 * 4;
        assert_eq!((img.width(), img.height()), (side, side));
    }

    #[test]
    fn png_scans_back_to_the_same_text() {
        let bytes = Rendered::new(URI).unwrap().png(4).unwrap();
        let img = image::load_from_memory(&bytes).unwrap().to_luma8();
        let mut prepared = rqrr::PreparedImage::prepare(img);
        let grids = prepared.detect_grids();
        assert_eq!(grids.len(), 1);
        let (_, text) = grids[0].decode().unwrap();
        assert_eq!(text, URI);
    }

    #[test]
    fn terminal_modules_match_the_code() {
        // Rebuild the module matrix from the half blocks and compare it with the code.
        let r = Rendered::new(URI).unwrap();
        let text = r.terminal(TerminalStyle::Plain);
        let q = QUIET_ZONE as isize;
        for (row, line) in text.lines().enumerate() {
            for (col, ch) in line.chars().enumerate() {
                let (x, y) = (col as isize - q, 2 * row as isize - q);
                let (top, bottom) = match ch {
                    '█' => (true, true),
                    '▀' => (true, false),
                    '▄' => (false, true),
                    _ => (false, false),
                };
                assert_eq!(top, r.is_dark(x, y));
                assert_eq!(bottom, r.is_dark(x, y + 1));
            }
        }
    }

    #[test]
    fn svg_is_an_svg_document() {
        let svg = Rendered::new(URI).unwrap().svg();
        assert!(svg.contains("<svg") && svg.trim_end().ends_with("</svg>"));
    }

    #[test]
    fn oversized_text_is_an_error() {
        let long = "9".repeat(8000);
        assert!(matches!(
            Rendered::new(&long),
            Err(RenderError::TooLong { len: 8000 })
        ));
    }
}
