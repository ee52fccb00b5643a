//! Sealed delivery: credentials encrypted to a user's own age (X25519) key, armored,
//! so that they cross the network only in a form the platform cannot open.

use std::{io::Write, str::FromStr};

/// Checks an age X25519 recipient (`age1…`); returns it in canonical form.
pub fn parse_recipient(raw: &str) -> Result<String, &'static str> {
    let trimmed = raw.trim();
    if trimmed.len() > 200 {
        return Err("is too long to be an age X25519 recipient");
    }
    age::x25519::Recipient::from_str(trimmed)
        .map(|r| r.to_string())
        .map_err(|_| "must be an age X25519 recipient (age1…, as printed by age-keygen)")
}

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("the stored recipient is not valid")]
    Recipient,
    #[error("age encryption failed")]
    Encrypt(#[from] std::io::Error),
    #[error("age encryption failed")]
    Age(#[from] age::EncryptError),
}

/// Encrypts `plaintext` to `recipient` as an armored age file
/// (`-----BEGIN AGE ENCRYPTED FILE-----`).
pub fn seal(recipient: &str, plaintext: &[u8]) -> Result<String, SealError> {
    let recipient = age::x25519::Recipient::from_str(recipient).map_err(|_| SealError::Recipient)?;
    let encryptor = age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))?;
    let mut armored = Vec::new();
    let armor = age::armor::ArmoredWriter::wrap_output(&mut armored, age::armor::Format::AsciiArmor)?;
    let mut writer = encryptor.wrap_output(armor)?;
    writer.write_all(plaintext)?;
    writer.finish()?.finish()?;
    String::from_utf8(armored).map_err(|_| SealError::Recipient)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn open(identity: &age::x25519::Identity, armored: &str) -> Result<Vec<u8>, age::DecryptError> {
        let reader = age::armor::ArmoredReader::new(armored.as_bytes());
        let decryptor = age::Decryptor::new(reader)?;
        let mut out = Vec::new();
        let mut r = decryptor.decrypt(std::iter::once(identity as &dyn age::Identity))?;
        r.read_to_end(&mut out).map_err(age::DecryptError::Io)?;
        Ok(out)
    }

    #[test]
    fn sealed_text_opens_with_the_matching_identity_only() {
        let identity = age::x25519::Identity::generate();
        let recipient = identity.to_public().to_string();
        let armored = seal(&recipient, b"{\"password\":\"s3cret-value\"}").unwrap();
        assert!(armored.starts_with("-----BEGIN AGE ENCRYPTED FILE-----"), "{armored}");
        assert!(!armored.contains("s3cret-value"));
        assert_eq!(open(&identity, &armored).unwrap(), b"{\"password\":\"s3cret-value\"}");
        let other = age::x25519::Identity::generate();
        assert!(open(&other, &armored).is_err());
    }

    #[test]
    fn recipients_are_checked() {
        let recipient = age::x25519::Identity::generate().to_public().to_string();
        assert_eq!(parse_recipient(&format!("  {recipient} ")).unwrap(), recipient);
        for bad in [
            "",
            "age1",
            "ssh-ed25519 AAAA",
            "AGE-SECRET-KEY-1XYZ",
            &"age1q".repeat(100),
        ] {
            assert!(parse_recipient(bad).is_err(), "{bad}");
        }
    }
}
