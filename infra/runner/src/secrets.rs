//! Secrets the runner generates, and the redaction of everything it records.
//!
//! A generated secret lives in memory (wrapped so it never prints) and in the 0600
//! variables file of a working directory that is removed after the run. Every line
//! of Terraform output the runner keeps goes through a [`Redactor`] first.

use rand::{distributions::Alphanumeric, rngs::OsRng, Rng};
use secrecy::{ExposeSecret, SecretString};

/// Length of generated passwords: 32 alphanumerics, about 190 bits. Alphanumeric
/// only, so the value needs no quoting in SQL, URIs or shell.
pub const PASSWORD_LEN: usize = 32;

/// What redacted values are replaced with.
pub const REDACTED: &str = "(redacted)";

/// A fresh password from the operating system's random generator.
pub fn generate_password() -> SecretString {
    let value: String = OsRng
        .sample_iter(&Alphanumeric)
        .take(PASSWORD_LEN)
        .map(char::from)
        .collect();
    SecretString::from(value)
}

/// Replaces every known secret value in a text.
#[derive(Default)]
pub struct Redactor {
    secrets: Vec<SecretString>,
}

impl Redactor {
    /// Values shorter than this are not redacted (they would blank out ordinary words);
    /// nothing the runner generates or the modules mark sensitive is that short.
    pub const MIN_LEN: usize = 6;

    pub fn add(&mut self, secret: &str) {
        if secret.len() >= Self::MIN_LEN && !self.secrets.iter().any(|s| s.expose_secret() == secret) {
            self.secrets.push(SecretString::from(secret.to_string()));
            // Longest first, so a secret that contains another is replaced whole.
            self.secrets.sort_by_key(|s| std::cmp::Reverse(s.expose_secret().len()));
        }
    }

    /// Adds every string inside a JSON value (a sensitive Terraform output).
    pub fn add_json(&mut self, value: &serde_json::Value) {
        match value {
            serde_json::Value::String(s) => self.add(s),
            serde_json::Value::Array(items) => items.iter().for_each(|v| self.add_json(v)),
            serde_json::Value::Object(map) => map.values().for_each(|v| self.add_json(v)),
            _ => {}
        }
    }

    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for secret in &self.secrets {
            out = out.replace(secret.expose_secret(), REDACTED);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_long_alphanumeric_and_different() {
        let a = generate_password();
        let b = generate_password();
        assert_eq!(a.expose_secret().len(), PASSWORD_LEN);
        assert!(a.expose_secret().chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert!(!format!("{a:?}").contains(a.expose_secret()));
    }

    #[test]
    fn redaction_replaces_every_known_secret_and_leaves_the_rest() {
        let mut r = Redactor::default();
        r.add("s3cr3tvalue");
        r.add_json(&serde_json::json!({"uri": "postgresql://u:pw123456@h/db", "n": 5}));
        r.add("abc"); // too short to be a secret
        let text = "password=s3cr3tvalue uri=postgresql://u:pw123456@h/db abc";
        assert_eq!(r.redact(text), "password=(redacted) uri=(redacted) abc");
    }

    #[test]
    fn a_secret_inside_a_longer_one_is_replaced_whole() {
        let mut r = Redactor::default();
        r.add("inner-secret");
        r.add("outer inner-secret outer");
        assert_eq!(r.redact("[outer inner-secret outer]"), "[(redacted)]");
    }
}
