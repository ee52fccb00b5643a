//! Passwords: argon2id with OWASP's parameters (m=19456 KiB, t=2, p=1), a length rule
//! (12–128 characters, any Unicode, no composition rules) and rejection of common or
//! easily guessed passwords (zxcvbn score below 3).
//!
//! Hashing and verifying run on the blocking pool, in argon2's 19 MiB work memory
//! taken from a small pool ([`work_memory`]) and given back afterwards, instead of a
//! fresh allocation per operation. A freed 19 MiB block is what made glibc's malloc
//! keep hundreds of MiB resident (docs/performance.md, "Peak RSS"); a reused one costs
//! neither the memory nor the page faults of mapping it again.
//!
//! The PHC strings are the stock ones: `argon2`'s own `PasswordVerifier` verifies the
//! hashes made here, and the hashes it makes (every stored hash so far) verify here.

use crate::error::ApiError;
use argon2::{
    password_hash::{rand_core::OsRng, Output, ParamsString, PasswordHash, Salt, SaltString},
    Algorithm, Argon2, Block, Params, Version,
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

fn params() -> Params {
    Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None).unwrap_or_else(|_| Params::default())
}

fn argon2() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params())
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
    work_memory::run(move |memory| hash_with(password.as_bytes(), memory)).await?
}

/// Verifies a password against a stored hash, or against the dummy hash when there is
/// no account, so both cases cost the same.
pub async fn verify(password: String, stored: Option<String>) -> Result<bool, ApiError> {
    let exists = stored.is_some();
    let stored = stored.unwrap_or_else(|| DUMMY_HASH.to_string());
    let verified = work_memory::run(move |memory| verify_with(password.as_bytes(), &stored, memory)).await?;
    Ok(verified && exists)
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(e.to_string().into())
}

/// A new PHC string for `password` (random salt, our parameters), computed in `memory`.
fn hash_with(password: &[u8], memory: &mut [Block]) -> Result<String, ApiError> {
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0u8; Salt::MAX_LENGTH];
    let salt_bytes = salt.as_salt().decode_b64(&mut salt_bytes).map_err(internal)?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon2()
        .hash_password_into_with_memory(password, salt_bytes, &mut out, memory)
        .map_err(internal)?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params()).map_err(internal)?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(internal)?),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches the PHC string `stored`: what `PasswordVerifier` does
/// (the algorithm, version, parameters and salt of `stored`; a constant-time
/// comparison of the outputs), computed in `memory`. A hash with more memory than the
/// pool's blocks (other parameters than ours) gets its own allocation. Unparsable
/// hashes never verify.
fn verify_with(password: &[u8], stored: &str, memory: &mut [Block]) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else {
        return false;
    };
    let version = match parsed.version {
        Some(v) => match Version::try_from(v) {
            Ok(v) => v,
            Err(_) => return false,
        },
        None => Version::default(),
    };
    // Carries the output length of `expected`.
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let mut salt_bytes = [0u8; Salt::MAX_LENGTH];
    let Ok(salt_bytes) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let mut out = [0u8; Output::MAX_LENGTH];
    let Some(out) = out.get_mut(..expected.len()) else {
        return false;
    };
    let mut own_memory = Vec::new();
    let memory = if params.block_count() <= memory.len() {
        memory
    } else {
        own_memory.resize(params.block_count(), Block::default());
        &mut own_memory[..]
    };
    let argon2 = Argon2::new(algorithm, version, params);
    if argon2
        .hash_password_into_with_memory(password, salt_bytes, out, memory)
        .is_err()
    {
        return false;
    }
    // `Output`'s equality is constant-time (subtle's `ct_eq`).
    Output::new(out).is_ok_and(|computed| computed == expected)
}

/// argon2's work memory (m = 19,456 blocks of 1 KiB), reused.
///
/// At most [`slots`] operations run at once, each on a blocking-pool thread with one
/// buffer from the pool; a buffer is allocated the first time it is needed and never
/// freed, so a process holds at most `slots` of them. A Lambda function handles one
/// request at a time and so holds one buffer (19 MiB); the dev server holds at most
/// one per core under concurrent logins. More hashing at once than there are cores
/// would gain no throughput (argon2 with p=1 is one thread of pure CPU), only memory.
///
/// The buffer is not zeroed between uses (argon2 overwrites every block before
/// reading it); as before, when the allocator kept freed buffers unzeroed, it holds
/// the last operation's blocks until the next one.
mod work_memory {
    use super::{params, ApiError};
    use argon2::Block;
    use std::sync::{Mutex, OnceLock};
    use tokio::sync::Semaphore;

    struct Pool {
        slots: Semaphore,
        idle: Mutex<Vec<Box<[Block]>>>,
    }

    /// How many argon2 operations may run at once: the cores this process may use.
    pub fn slots() -> usize {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    }

    fn pool() -> &'static Pool {
        static POOL: OnceLock<Pool> = OnceLock::new();
        POOL.get_or_init(|| Pool {
            slots: Semaphore::new(slots()),
            idle: Mutex::new(Vec::new()),
        })
    }

    /// A buffer from the pool, or a new one when none is idle.
    fn take(pool: &Pool) -> Box<[Block]> {
        let idle = pool.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        idle.unwrap_or_else(|| vec![Block::default(); params().block_count()].into_boxed_slice())
    }

    fn give_back(pool: &Pool, memory: Box<[Block]>) {
        pool.idle.lock().unwrap_or_else(|e| e.into_inner()).push(memory);
    }

    /// Runs `op` on the blocking pool with a work buffer, once a slot is free.
    pub async fn run<T: Send + 'static>(op: impl FnOnce(&mut [Block]) -> T + Send + 'static) -> Result<T, ApiError> {
        let pool = pool();
        // The permit travels with the work: a caller that gives up does not free the
        // slot before the blocking work it started has finished.
        let permit = pool.slots.acquire().await.map_err(ApiError::internal)?;
        tokio::task::spawn_blocking(move || {
            let mut memory = take(pool);
            let out = op(&mut memory);
            give_back(pool, memory);
            drop(permit);
            out
        })
        .await
        .map_err(ApiError::internal)
    }

    /// Buffers allocated so far and idle now (for tests).
    #[cfg(test)]
    pub fn idle() -> usize {
        pool().idle.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher, PasswordVerifier};

    const PASSWORD: &str = "correct horse battery staple";

    #[tokio::test]
    async fn hashes_are_argon2id_with_the_required_parameters() {
        let h = hash(PASSWORD.into()).await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify(PASSWORD.into(), Some(h.clone())).await.unwrap());
        assert!(!verify("wrong horse battery staple".into(), Some(h)).await.unwrap());
    }

    #[tokio::test]
    async fn unknown_account_never_verifies() {
        assert!(!verify("anything at all really".into(), None).await.unwrap());
    }

    #[tokio::test]
    async fn new_hashes_verify_with_the_stock_verifier() {
        let h = hash(PASSWORD.into()).await.unwrap();
        let parsed = PasswordHash::new(&h).unwrap();
        assert!(argon2().verify_password(PASSWORD.as_bytes(), &parsed).is_ok());
        assert!(argon2()
            .verify_password(b"correct horse battery stapler", &parsed)
            .is_err());
        // Same salt, same output as the stock hasher: the strings are interchangeable.
        let salt = parsed.salt.unwrap();
        let stock = argon2().hash_password(PASSWORD.as_bytes(), salt).unwrap();
        assert_eq!(stock.to_string(), h);
    }

    #[tokio::test]
    async fn stock_hashes_verify_here() {
        let salt = SaltString::generate(&mut OsRng);
        let stock = argon2().hash_password(PASSWORD.as_bytes(), &salt).unwrap().to_string();
        assert!(verify(PASSWORD.into(), Some(stock.clone())).await.unwrap());
        assert!(!verify("Correct horse battery staple".into(), Some(stock.clone()))
            .await
            .unwrap());
        assert!(!verify(String::new(), Some(stock)).await.unwrap());
        // A stock hash with other parameters (here more memory than the pool's
        // buffers, and argon2i) still verifies, in memory of its own.
        let other = Argon2::new(
            Algorithm::Argon2i,
            Version::V0x13,
            Params::new(MEMORY_KIB + 1024, 1, 2, Some(24)).unwrap(),
        );
        let other = other.hash_password(PASSWORD.as_bytes(), &salt).unwrap().to_string();
        assert!(verify(PASSWORD.into(), Some(other.clone())).await.unwrap());
        assert!(!verify("wrong horse battery staple".into(), Some(other)).await.unwrap());
    }

    /// A PHC string made by argon2 0.5's stock `hash_password` (the code before the
    /// work memory was reused), for [`PASSWORD`] and the salt "somesaltsomesalt".
    const STOCK_HASH: &str =
        "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$ISO7kkvFzh19GM8qB7patN3C3Y9HHsjlVTfEZ9T600Y";

    #[tokio::test]
    async fn a_stored_stock_hash_verifies() {
        assert!(verify(PASSWORD.into(), Some(STOCK_HASH.into())).await.unwrap());
        assert!(!verify("correct horse battery stapl".into(), Some(STOCK_HASH.into()))
            .await
            .unwrap());
        let salt = Salt::from_b64("c29tZXNhbHRzb21lc2FsdA").unwrap();
        let stock = argon2().hash_password(PASSWORD.as_bytes(), salt).unwrap();
        assert_eq!(stock.to_string(), STOCK_HASH);
    }

    #[tokio::test]
    async fn malformed_hashes_never_verify() {
        for stored in [
            "",
            "not a hash",
            "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA",
            "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$",
            "$argon2id$v=18$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$ISO7kkvFzh19GM8qB7patN3C3Y9HHsjlVTfEZ9T600Y",
            "$scrypt$ln=16,r=8,p=1$c29tZXNhbHRzb21lc2FsdA$ISO7kkvFzh19GM8qB7patN3C3Y9HHsjlVTfEZ9T600Y",
            "$argon2id$v=19$m=8,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$ISO7kkvFzh19GM8qB7patN3C3Y9HHsjlVTfEZ9T600Y",
        ] {
            assert!(!verify(PASSWORD.into(), Some(stored.into())).await.unwrap(), "{stored}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_operations_share_at_most_one_buffer_per_slot() {
        let h = hash(PASSWORD.into()).await.unwrap();
        let checks: Vec<_> = (0..6)
            .map(|i| {
                let h = h.clone();
                let password = if i % 2 == 0 {
                    PASSWORD
                } else {
                    "wrong horse battery staple"
                };
                tokio::spawn(async move { (i % 2 == 0, verify(password.into(), Some(h)).await.unwrap()) })
            })
            .collect();
        for check in checks {
            let (expected, verified) = check.await.unwrap();
            assert_eq!(verified, expected);
        }
        // Other tests run at the same time in this process; none holds a buffer
        // outside a slot.
        assert!(work_memory::idle() <= work_memory::slots());
    }

    #[test]
    fn dummy_hash_parses_with_the_same_parameters() {
        let parsed = PasswordHash::new(DUMMY_HASH).unwrap();
        assert_eq!(parsed.algorithm.as_str(), "argon2id");
        assert_eq!(parsed.params.get_decimal("m"), Some(MEMORY_KIB));
        assert_eq!(parsed.params.get_decimal("t"), Some(ITERATIONS));
        assert_eq!(parsed.params.get_decimal("p"), Some(PARALLELISM));
        assert_eq!(Params::try_from(&parsed).unwrap().block_count(), params().block_count());
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
