//! Access tokens: HS256 only (pinned), with `sub`, `iat`, `nbf`, `exp`, `iss`, `aud`
//! required and checked, plus `ver`, the user's token version (revocation).
//!
//! Time claims are checked here against the app's [`Clock`](crate::clock::Clock), not by
//! `jsonwebtoken`'s own system-time check, so tests can move time forward.

use crate::error::ApiError;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use time::OffsetDateTime;
use uuid::Uuid;

/// Tolerated clock skew between issuers and verifiers.
const LEEWAY_SECS: i64 = 30;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub sub: Uuid,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
    pub jti: Uuid,
    /// The user's token version when the token was issued.
    pub ver: u64,
}

/// An issued token, as the login endpoint returns it.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct AccessToken {
    pub access_token: String,
    /// Always `bearer`.
    pub token_type: String,
    /// Lifetime in seconds.
    pub expires_in: u64,
}

pub struct TokenService {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    ttl: Duration,
}

impl TokenService {
    /// `key` must hold at least 256 bits; [`crate::app`] enforces that at init.
    pub fn new(key: &[u8], issuer: &str, audience: &str, ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.set_required_spec_claims(&["exp", "iat", "nbf", "iss", "aud", "sub"]);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        Self {
            encoding: EncodingKey::from_secret(key),
            decoding: DecodingKey::from_secret(key),
            validation,
            issuer: issuer.into(),
            audience: audience.into(),
            ttl,
        }
    }

    pub fn issue(&self, user_id: Uuid, token_version: u64, now: OffsetDateTime) -> Result<AccessToken, ApiError> {
        let iat = now.unix_timestamp();
        let ttl = self.ttl.as_secs();
        let claims = Claims {
            sub: user_id,
            iat,
            nbf: iat,
            exp: iat + i64::try_from(ttl).unwrap_or(3600),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            jti: Uuid::new_v4(),
            ver: token_version,
        };
        let token = encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).map_err(ApiError::internal)?;
        Ok(AccessToken {
            access_token: token,
            token_type: "bearer".into(),
            expires_in: ttl,
        })
    }

    /// Checks signature, algorithm, issuer, audience and the time claims.
    pub fn verify(&self, token: &str, now: OffsetDateTime) -> Result<Claims, ApiError> {
        let data = decode::<Claims>(token, &self.decoding, &self.validation).map_err(|e| {
            tracing::info!(reason = ?e.kind(), "rejected token");
            ApiError::Unauthorized("invalid token".into())
        })?;
        let claims = data.claims;
        let now = now.unix_timestamp();
        if claims.exp <= now - LEEWAY_SECS {
            return Err(ApiError::Unauthorized("token expired".into()));
        }
        if claims.nbf > now + LEEWAY_SECS || claims.iat > now + LEEWAY_SECS {
            return Err(ApiError::Unauthorized("token not valid yet".into()));
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
    use time::macros::datetime;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef-test-only";
    const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);

    fn service() -> TokenService {
        TokenService::new(KEY, "iss", "aud", Duration::from_secs(3600))
    }

    fn sign(claims: &serde_json::Value, key: &[u8], alg: Algorithm) -> String {
        encode(&Header::new(alg), claims, &EncodingKey::from_secret(key)).unwrap()
    }

    fn claims_json(now: i64) -> serde_json::Value {
        serde_json::json!({
            "sub": Uuid::nil(), "iat": now, "nbf": now, "exp": now + 60,
            "iss": "iss", "aud": "aud", "jti": Uuid::nil(), "ver": 0
        })
    }

    #[test]
    fn issued_tokens_verify() {
        let t = service().issue(Uuid::nil(), 3, NOW).unwrap();
        let c = service().verify(&t.access_token, NOW).unwrap();
        assert_eq!(c.ver, 3);
        assert_eq!(t.expires_in, 3600);
    }

    #[test]
    fn expired_tokens_fail() {
        let t = service().issue(Uuid::nil(), 0, NOW).unwrap();
        assert!(service()
            .verify(&t.access_token, NOW + time::Duration::minutes(61))
            .is_err());
    }

    #[test]
    fn future_tokens_fail() {
        let t = service()
            .issue(Uuid::nil(), 0, NOW + time::Duration::minutes(5))
            .unwrap();
        assert!(service().verify(&t.access_token, NOW).is_err());
    }

    #[test]
    fn wrong_key_issuer_audience_and_algorithm_fail() {
        let now = NOW.unix_timestamp();
        let good = claims_json(now);
        assert!(service().verify(&sign(&good, KEY, Algorithm::HS256), NOW).is_ok());
        assert!(service()
            .verify(
                &sign(&good, b"another key of enough length!!!!!", Algorithm::HS256),
                NOW
            )
            .is_err());
        assert!(service().verify(&sign(&good, KEY, Algorithm::HS512), NOW).is_err());
        let mut wrong_aud = good.clone();
        wrong_aud["aud"] = "other".into();
        assert!(service().verify(&sign(&wrong_aud, KEY, Algorithm::HS256), NOW).is_err());
        let mut wrong_iss = good.clone();
        wrong_iss["iss"] = "other".into();
        assert!(service().verify(&sign(&wrong_iss, KEY, Algorithm::HS256), NOW).is_err());
    }

    #[test]
    fn missing_claims_fail() {
        let now = NOW.unix_timestamp();
        for claim in ["exp", "iat", "nbf", "iss", "aud", "sub"] {
            let mut c = claims_json(now);
            c.as_object_mut().unwrap().remove(claim);
            assert!(
                service().verify(&sign(&c, KEY, Algorithm::HS256), NOW).is_err(),
                "{claim}"
            );
        }
    }

    #[test]
    fn alg_none_fails() {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let body = URL_SAFE_NO_PAD.encode(claims_json(NOW.unix_timestamp()).to_string());
        assert!(service().verify(&format!("{header}.{body}."), NOW).is_err());
    }
}
