//! Passwords: argon2id with OWASP's parameters (m=19456 KiB, t=2, p=1), a length rule
//! (12–128 characters, any Unicode, no composition rules) and rejection of common or
//! easily guessed passwords (zxcvbn score below 3). Hashing runs on the blocking pool.

use crate::error::ApiError;
use argon2::{
    password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
    Algorithm, Argon2, Params, Version,
};

pub const MIN_CHARS: usize = 12;
pub const MAX_CHARS: usize = 128;
pub const MEMORY_KIB: u32 = 19_456;
pub const ITERATIONS: u32 = 2;
pub const PARALLELISM: u32 = 1;

/// A hash of a random password nobody knows, with the same parameters. Verifying
/// against it when the email is unknown makes that answer take as long as a wrong
/// password for a real account.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$ZHVtbXlzYWx0ZHVtbXlzYWx0$9fVl1JtJzv3f1l0NZIk5fIu8q0H6xgYqk3Zt5b0cXkE";

fn argon2() -> Argon2<'static> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None).unwrap_or_else(|_| Params::default());
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Checks the password rules; `context` (e.g. the email) counts against strength.
pub fn check_policy(field: &str, password: &str, context: &[&str]) -> Result<(), ApiError> {
    let chars = password.chars().count();
    if chars < MIN_CHARS {
        return Err(ApiError::validation(
            field,
            format!("must be at least {MIN_CHARS} characters"),
        ));
    }
    if chars > MAX_CHARS {
        return Err(ApiError::validation(
            field,
            format!("must be at most {MAX_CHARS} characters"),
        ));
    }
    let strength = zxcvbn::zxcvbn(password, context);
    if (strength.score() as u8) < 3 {
        return Err(ApiError::validation(
            field,
            "is too common or too easy to guess; a few unrelated words make a strong password",
        ));
    }
    Ok(())
}

/// Hashes a password (CPU-heavy: runs on the blocking pool).
pub async fn hash(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        argon2()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| ApiError::Internal(e.to_string().into()))
    })
    .await
    .map_err(ApiError::internal)?
}

/// Verifies a password against a stored hash, or against the dummy hash when there is
/// no account, so both cases cost the same.
pub async fn verify(password: String, stored: Option<String>) -> Result<bool, ApiError> {
    let exists = stored.is_some();
    let stored = stored.unwrap_or_else(|| DUMMY_HASH.to_string());
    tokio::task::spawn_blocking(move || {
        let Ok(parsed) = PasswordHash::new(&stored) else {
            return false;
        };
        argon2().verify_password(password.as_bytes(), &parsed).is_ok() && exists
    })
    .await
    .map_err(ApiError::internal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_with_the_required_parameters() {
        let h = hash("correct horse battery staple".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify("correct horse battery staple".into(), Some(h.clone()))
            .await
            .unwrap());
        assert!(!verify("wrong horse battery staple".into(), Some(h)).await.unwrap());
    }

    #[tokio::test]
    async fn unknown_account_never_verifies() {
        assert!(!verify("anything at all really".into(), None).await.unwrap());
    }

    #[test]
    fn dummy_hash_parses_with_the_same_parameters() {
        let parsed = PasswordHash::new(DUMMY_HASH).unwrap();
        assert_eq!(parsed.algorithm.as_str(), "argon2id");
        assert_eq!(parsed.params.get_decimal("m"), Some(MEMORY_KIB));
        assert_eq!(parsed.params.get_decimal("t"), Some(ITERATIONS));
    }

    #[test]
    fn policy_rejects_short_long_and_common() {
        assert!(check_policy("password", "short", &[]).is_err());
        assert!(check_policy("password", &"x".repeat(129), &[]).is_err());
        assert!(check_policy("password", "password1234", &[]).is_err());
        assert!(check_policy("password", "qwertyuiop123", &[]).is_err());
        assert!(check_policy("password", "ada@example.com1", &["ada@example.com"]).is_err());
    }

    #[test]
    fn policy_accepts_passphrases_and_unicode_without_composition_rules() {
        assert!(check_policy("password", "correct horse battery staple", &[]).is_ok());
        assert!(check_policy("password", "tröpfchen-überall-緑茶-kettle", &[]).is_ok());
        // 128 characters exactly is allowed.
        let long: String = "gleaming otter ".repeat(9).chars().take(128).collect();
        assert!(check_policy("password", &long, &[]).is_ok());
    }
}
