//! Pagination cursors: opaque and tamper-proof. A cursor is the DynamoDB start key,
//! encrypted and authenticated (AES-256-GCM) together with the list it belongs to,
//! so clients never see keys and cannot forge, edit or reuse a cursor elsewhere.

use crate::{error::ApiError, http::PageRequest, model::Page, store::Item};
use aes_gcm::{
    aead::{Aead, KeyInit, Payload},
    Aes256Gcm, Nonce,
};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use serde::Serialize;

const NONCE_LEN: usize = 12;
/// Cursors longer than this are rejected before any work is done.
const MAX_CURSOR_LEN: usize = 2048;

pub struct CursorSealer {
    cipher: Aes256Gcm,
}

impl CursorSealer {
    pub fn new(key: &[u8; 32]) -> Self {
        Self {
            cipher: Aes256Gcm::new(key.into()),
        }
    }

    /// Seals `key` for the list named by `scope` (e.g. `teams` or `members:<team id>`).
    pub fn seal(&self, scope: &str, key: &Item) -> Result<String, ApiError> {
        let json: serde_json::Value = serde_dynamo::from_item(key.clone()).map_err(ApiError::internal)?;
        let plaintext = serde_json::to_vec(&json).map_err(ApiError::internal)?;
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let sealed = self
            .cipher
            .encrypt(
                &Nonce::from(nonce_bytes),
                Payload {
                    msg: &plaintext,
                    aad: scope.as_bytes(),
                },
            )
            .map_err(|_| ApiError::Internal("cursor encryption failed".into()))?;
        let mut out = nonce_bytes.to_vec();
        out.extend(sealed);
        Ok(URL_SAFE_NO_PAD.encode(out))
    }

    /// The start key of the page a list request asks for.
    pub fn start(&self, scope: &str, page: &PageRequest) -> Result<Option<Item>, ApiError> {
        page.cursor.as_deref().map(|c| self.open(scope, c)).transpose()
    }

    /// A page of `items`, with a sealed cursor when there is more.
    pub fn page<T: Serialize>(&self, scope: &str, items: Vec<T>, next: Option<Item>) -> Result<Page<T>, ApiError> {
        Ok(Page {
            items,
            next_cursor: next.map(|k| self.seal(scope, &k)).transpose()?,
        })
    }

    /// Opens a cursor for `scope`; anything forged, edited or from another list is a 400.
    pub fn open(&self, scope: &str, cursor: &str) -> Result<Item, ApiError> {
        let invalid = || ApiError::bad_field("cursor", "is not a valid cursor for this list");
        if cursor.len() > MAX_CURSOR_LEN {
            return Err(invalid());
        }
        let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
        if bytes.len() <= NONCE_LEN {
            return Err(invalid());
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| invalid())?;
        let plaintext = self
            .cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: sealed,
                    aad: scope.as_bytes(),
                },
            )
            .map_err(|_| invalid())?;
        let json: serde_json::Value = serde_json::from_slice(&plaintext).map_err(|_| invalid())?;
        serde_dynamo::to_item(json).map_err(|_| invalid())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::types::AttributeValue;
    use std::collections::HashMap;

    fn key() -> Item {
        HashMap::from([
            ("PK".to_string(), AttributeValue::S("TEAM#1".into())),
            ("SK".to_string(), AttributeValue::S("MEMBER#2".into())),
        ])
    }

    #[test]
    fn round_trips_and_hides_the_key() {
        let s = CursorSealer::new(&[7; 32]);
        let c = s.seal("teams", &key()).unwrap();
        assert!(!c.contains("TEAM"));
        assert_eq!(s.open("teams", &c).unwrap(), key());
    }

    #[test]
    fn rejects_tampered_foreign_and_garbage_cursors() {
        let s = CursorSealer::new(&[7; 32]);
        let c = s.seal("teams", &key()).unwrap();
        assert!(s.open("users", &c).is_err(), "foreign list");
        let mut bytes = URL_SAFE_NO_PAD.decode(&c).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert!(s.open("teams", &URL_SAFE_NO_PAD.encode(bytes)).is_err(), "tampered");
        assert!(s.open("teams", "not base64!").is_err());
        assert!(s.open("teams", "").is_err());
        assert!(s.open("teams", &"A".repeat(5000)).is_err());
        let other = CursorSealer::new(&[8; 32]);
        assert!(other.open("teams", &c).is_err(), "other key");
    }
}
