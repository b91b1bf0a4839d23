//! Fitting free text (names, address lines) into an ERP field of a fixed width.
//!
//! A value longer than its field is cut to the field's width at a grapheme-cluster boundary
//! (`unicode-segmentation`), so no accented letter, emoji or flag is split in two, and the caller
//! keeps the whole value elsewhere (see each connector). Widths are counted in the unit the ERP
//! stores the column in:
//!
//! * [`Unit::Utf16`] for SQL Server `nvarchar(n)` columns, whose `n` counts UTF-16 code units (a
//!   character outside the Basic Multilingual Plane, such as most emoji, takes two). Epicor Kinetic
//!   runs on SQL Server and stores text in `nvarchar` columns (assumption: the contract facts give
//!   Epicor's field types but not their widths or SQL types).
//! * [`Unit::Chars`] for `varchar(n)` columns in a single-byte code page, which hold `n`
//!   characters (Sage 500 staging tables: `varchar(n)` in the contract facts), and for xBASE
//!   character fields (Sage Pro).

use std::borrow::Cow;
use unicode_segmentation::UnicodeSegmentation;

/// What a field's width counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Unicode scalar values (characters).
    Chars,
    /// UTF-16 code units.
    Utf16,
}

impl Unit {
    /// The length of `s` in this unit.
    pub fn len(self, s: &str) -> usize {
        match self {
            Unit::Chars => s.chars().count(),
            Unit::Utf16 => s.encode_utf16().count(),
        }
    }
}

/// `value` fitted into a field of `width` units: itself when it fits, else its longest prefix
/// of whole grapheme clusters that fits (trailing white space removed). `cut` says whether
/// anything was left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fitted<'a> {
    pub text: Cow<'a, str>,
    pub cut: bool,
}

pub fn fit(value: &str, width: usize, unit: Unit) -> Fitted<'_> {
    if unit.len(value) <= width {
        return Fitted {
            text: Cow::Borrowed(value),
            cut: false,
        };
    }
    let mut used = 0usize;
    let mut end = 0usize;
    for (at, g) in value.grapheme_indices(true) {
        let n = unit.len(g);
        if used + n > width {
            break;
        }
        used += n;
        end = at + g.len();
    }
    let prefix = value.get(..end).unwrap_or("").trim_end();
    Fitted {
        text: Cow::Owned(prefix.to_owned()),
        cut: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_that_fits_is_kept_whole() {
        let f = fit("Northwind Traders", 40, Unit::Chars);
        assert_eq!(f.text, "Northwind Traders");
        assert!(!f.cut);
    }

    #[test]
    fn a_long_value_is_cut_at_a_grapheme_boundary() {
        // "é" written as e + combining acute accent: two chars, one grapheme.
        let name = "Caf\u{65}\u{301} Zoë";
        let f = fit(name, 4, Unit::Chars);
        assert_eq!(f.text, "Caf");
        assert!(f.cut);
        let f = fit(name, 5, Unit::Chars);
        assert_eq!(f.text, "Caf\u{65}\u{301}");
        // A family emoji is one grapheme of 7 chars (11 UTF-16 units): never split.
        let family = "ab\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}\u{200D}\u{1F466}cd";
        assert_eq!(fit(family, 8, Unit::Chars).text, "ab");
        assert_eq!(
            fit(family, 9, Unit::Chars).text,
            family.get(..family.len() - 2).unwrap()
        );
        assert_eq!(fit(family, 12, Unit::Utf16).text, "ab");
        assert_eq!(
            fit(family, 13, Unit::Utf16).text,
            family.get(..family.len() - 2).unwrap()
        );
    }

    #[test]
    fn utf16_counts_astral_characters_twice() {
        let s = "\u{1F600}\u{1F600}\u{1F600}"; // three emoji: 3 chars, 6 UTF-16 units
        assert!(!fit(s, 3, Unit::Chars).cut);
        let f = fit(s, 3, Unit::Utf16);
        assert!(f.cut);
        assert_eq!(f.text, "\u{1F600}");
        assert_eq!(Unit::Utf16.len(s), 6);
    }

    #[test]
    fn trailing_space_at_the_cut_is_dropped() {
        assert_eq!(fit("Acme Corporation", 5, Unit::Chars).text, "Acme");
    }
}
