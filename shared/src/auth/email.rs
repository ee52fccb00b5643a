//! Email addresses: parsed once at the edge, NFC-normalised, compared
//! case-insensitively (see `crate::text`).

use crate::{error::ApiError, text};

/// A syntactically plausible email address, trimmed and NFC-normalised, without
/// control, format (bidi, zero-width) or invisible characters. Uniqueness uses
/// [`Email::normalised`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

const MAX_LEN: usize = 254;

impl Email {
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        let email = text::nfc(raw.trim());
        let email = email.as_str();
        let invalid = |why: &str| ApiError::validation("email", why.to_string());
        if email.is_empty() {
            return Err(invalid("must not be empty"));
        }
        if let Some(problem) = text::identity_problem(email) {
            return Err(invalid(problem));
        }
        // Lower-casing can lengthen a string; the stored key must fit too.
        if email.len() > MAX_LEN || normalise(email).len() > MAX_LEN {
            return Err(invalid("must be at most 254 bytes"));
        }
        let (local, domain) = email
            .rsplit_once('@')
            .ok_or_else(|| invalid("must be an email address"))?;
        let ok = !local.is_empty()
            && local.len() <= 64
            && !domain.is_empty()
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && !email.chars().any(|c| c.is_whitespace() || c.is_control())
            && !local.contains('@');
        if !ok {
            return Err(invalid("must be an email address"));
        }
        Ok(Self(email.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form used for uniqueness and look-ups.
    pub fn normalised(&self) -> String {
        normalise(&self.0)
    }
}

/// Normalises any string the way stored emails are keyed: trimmed, NFC, lower-case.
pub fn normalise(raw: &str) -> String {
    text::fold(raw)
}

/// The key to look an email up by (login, filters): `None` when it is longer than any
/// stored email can be, so oversized input never reaches DynamoDB's key-size limit.
pub fn lookup_key(raw: &str) -> Option<String> {
    Some(normalise(raw)).filter(|k| !k.is_empty() && k.len() <= MAX_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_trims() {
        let e = Email::parse("  Ada@Example.COM ").unwrap();
        assert_eq!(e.as_str(), "Ada@Example.COM");
        assert_eq!(e.normalised(), "ada@example.com");
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "   ",
            "no-at",
            "@x.y",
            "a@",
            "a@b",
            "a b@c.d",
            "a@.b",
            "a@b.",
            "a@b..c",
            "a\u{0}@b.c",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(Email::parse(&format!("{}@b.c", "a".repeat(300))).is_err());
    }

    #[test]
    fn lookup_keys_are_bounded() {
        assert_eq!(lookup_key(" A@B.C ").as_deref(), Some("a@b.c"));
        assert_eq!(lookup_key(&"a".repeat(2000)), None);
        assert_eq!(lookup_key("  "), None);
    }

    #[test]
    fn unicode_addresses_are_allowed_and_nfc_normalised() {
        assert!(Email::parse("jürgen@bücher.de").is_ok());
        let decomposed = Email::parse("ju\u{308}rgen@bu\u{308}cher.de").unwrap();
        assert_eq!(decomposed.as_str(), "jürgen@bücher.de");
        assert_eq!(decomposed.normalised(), normalise("JÜRGEN@bücher.de"));
        assert_eq!(lookup_key("JU\u{308}RGEN@bücher.de"), Some(decomposed.normalised()));
    }

    #[test]
    fn bidi_and_zero_width_characters_are_refused() {
        for bad in [
            "ad\u{200b}a@example.com",
            "ada@exam\u{202e}elpmaxe.com",
            "\u{2066}ada@example.com",
            "a\u{ad}da@example.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
