//! Text rules shared by every input: NFC normalisation of identities, and the
//! characters that identities and free text must not contain.
//!
//! - **Identities** (emails, team names; resource names are ASCII DNS labels anyway)
//!   are NFC-normalised before they are compared or stored, so `é` typed as one code
//!   point or as `e` + combining accent is the same name. They must not contain
//!   control characters (Cc), format characters (Cf: bidi embeddings, overrides and
//!   isolates U+202A–U+202E and U+2066–U+2069, zero-width spaces and joiners U+200B–
//!   U+200F, U+2060–U+2064, U+FEFF, soft hyphen, tags, …), line or paragraph
//!   separators (Zl, Zp), or the invisible Hangul fillers: characters that make two
//!   names look alike, hide part of a name, or reorder what a reader sees.
//! - **Free text** (descriptions, justifications, comments, reasons) must not contain
//!   control characters other than tab, line feed and carriage return.

use unicode_normalization::UnicodeNormalization;

/// NFC normal form.
pub fn nfc(s: &str) -> String {
    s.nfc().collect()
}

/// The compared form of an identity: trimmed, NFC, lower-case (NFC again, as
/// lower-casing can produce non-NFC sequences).
pub fn fold(s: &str) -> String {
    nfc(&nfc(s.trim()).to_lowercase())
}

/// Format characters (general category Cf, Unicode 15), line and paragraph
/// separators (Zl, Zp), and invisible fillers, as inclusive ranges.
const INVISIBLE: &[(char, char)] = &[
    ('\u{AD}', '\u{AD}'),
    ('\u{600}', '\u{605}'),
    ('\u{61C}', '\u{61C}'),
    ('\u{6DD}', '\u{6DD}'),
    ('\u{70F}', '\u{70F}'),
    ('\u{890}', '\u{891}'),
    ('\u{8E2}', '\u{8E2}'),
    ('\u{115F}', '\u{1160}'), // Hangul choseong and jungseong fillers (Lo, invisible)
    ('\u{180E}', '\u{180E}'),
    ('\u{200B}', '\u{200F}'),
    ('\u{2028}', '\u{202E}'),
    ('\u{2060}', '\u{2064}'),
    ('\u{2066}', '\u{206F}'),
    ('\u{3164}', '\u{3164}'), // Hangul filler (Lo, invisible)
    ('\u{FEFF}', '\u{FEFF}'),
    ('\u{FFA0}', '\u{FFA0}'), // halfwidth Hangul filler (Lo, invisible)
    ('\u{FFF9}', '\u{FFFB}'),
    ('\u{110BD}', '\u{110BD}'),
    ('\u{110CD}', '\u{110CD}'),
    ('\u{13430}', '\u{1343F}'),
    ('\u{1BCA0}', '\u{1BCA3}'),
    ('\u{1D173}', '\u{1D17A}'),
    ('\u{E0001}', '\u{E0001}'),
    ('\u{E0020}', '\u{E007F}'),
];

/// True for a character no identity may contain: control, format (bidi, zero-width),
/// separator or invisible filler.
pub fn is_forbidden_in_identity(c: char) -> bool {
    c.is_control() || INVISIBLE.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c))
}

/// What is wrong with an identity's characters, if anything.
pub fn identity_problem(s: &str) -> Option<&'static str> {
    s.chars()
        .any(is_forbidden_in_identity)
        .then_some("must not contain control, format (bidi, zero-width) or invisible characters")
}

/// What is wrong with free text's characters, if anything.
pub fn free_text_problem(s: &str) -> Option<&'static str> {
    s.chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
        .then_some("must not contain control characters (tab and line breaks are allowed)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nfc_makes_composed_and_decomposed_equal() {
        assert_eq!(nfc("e\u{301}"), "\u{e9}");
        assert_eq!(fold("  J\u{dc}RGEN "), fold("ju\u{308}rgen"));
    }

    #[test]
    fn bidi_zero_width_and_controls_are_forbidden_in_identities() {
        for c in [
            '\u{0}',
            '\u{7}',
            '\u{1b}',
            '\u{7f}',
            '\u{85}',
            '\u{ad}',
            '\u{200b}',
            '\u{200c}',
            '\u{200d}',
            '\u{200e}',
            '\u{200f}',
            '\u{2028}',
            '\u{2029}',
            '\u{202a}',
            '\u{202b}',
            '\u{202c}',
            '\u{202d}',
            '\u{202e}',
            '\u{2060}',
            '\u{2066}',
            '\u{2067}',
            '\u{2068}',
            '\u{2069}',
            '\u{feff}',
            '\u{3164}',
            '\u{e0041}',
        ] {
            assert!(is_forbidden_in_identity(c), "{:04x}", c as u32);
            assert!(identity_problem(&format!("a{c}b")).is_some());
        }
        for ok in ["Platform", "Plattform Über", "緑の森", "ops-team 2", "x\u{e9}"] {
            assert_eq!(identity_problem(ok), None, "{ok}");
        }
    }

    #[test]
    fn free_text_allows_line_breaks_and_tabs_only() {
        assert_eq!(
            free_text_problem("line one\nline two\r\n\tindented \u{202e} kept"),
            None
        );
        for bad in ["a\u{0}b", "bell\u{7}", "esc\u{1b}[31m", "del\u{7f}", "c1\u{9b}"] {
            assert!(free_text_problem(bad).is_some(), "{bad:?}");
        }
    }
}
