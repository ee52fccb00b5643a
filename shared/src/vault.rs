//! Credentials at rest: envelope encryption with KMS.
//!
//! Each sealing asks KMS for a fresh 256-bit data key (`GenerateDataKey`) under the
//! credentials key, with the encryption context `ssi:request_id` and `ssi:team_id`;
//! the credentials are encrypted with it (AES-256-GCM, the same context and the version
//! as associated data), and only the KMS-encrypted copy of the data key is kept. To
//! open them, KMS decrypts the data key, which it does only with the same context: a
//! ciphertext copied to another request (or team) does not open.
//!
//! Locally the same code talks to moto's KMS.

use aes_gcm::{
    aead::{Aead, KeyInit, Payload},
    Aes256Gcm, Nonce,
};
use aws_sdk_kms::{primitives::Blob, types::DataKeySpec};
use secrecy::{ExposeSecret, SecretBox};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

const NONCE_LEN: usize = 12;

/// Credentials as stored: nothing here is readable without KMS.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SealedCredentials {
    pub request_id: Uuid,
    pub team_id: Uuid,
    /// 1 for the first credentials of a request, one more for each rotation.
    pub version: u32,
    pub issued_at: String,
    /// The KMS key that encrypted the data key.
    pub key_id: String,
    #[serde(with = "b64")]
    pub encrypted_data_key: Vec<u8>,
    #[serde(with = "b64")]
    pub nonce: Vec<u8>,
    #[serde(with = "b64")]
    pub ciphertext: Vec<u8>,
}

// The ciphertext is not secret, but there is no reason to print it either.
impl std::fmt::Debug for SealedCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedCredentials")
            .field("request_id", &self.request_id)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

mod b64 {
    use base64::{engine::general_purpose::STANDARD, Engine};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

/// Decrypted credentials. Never printed: `Debug` shows only the field names.
pub struct OpenCredentials(serde_json::Map<String, serde_json::Value>);

impl OpenCredentials {
    pub fn new(fields: serde_json::Map<String, serde_json::Value>) -> Self {
        Self(fields)
    }

    pub fn expose(&self) -> &serde_json::Map<String, serde_json::Value> {
        &self.0
    }
}

impl std::fmt::Debug for OpenCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("KMS refused or failed")]
    Kms(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The ciphertext does not open with this context, or was altered.
    #[error("the credentials do not decrypt for this request")]
    Integrity,
    #[error("credentials are not valid JSON")]
    Format(#[from] serde_json::Error),
}

/// The credentials key, and the client that uses it.
#[derive(Clone, Debug)]
pub struct Vault {
    kms: aws_sdk_kms::Client,
    key_id: String,
}

fn context(request_id: Uuid, team_id: Uuid) -> std::collections::HashMap<String, String> {
    std::collections::HashMap::from([
        ("ssi:request_id".to_string(), request_id.to_string()),
        ("ssi:team_id".to_string(), team_id.to_string()),
    ])
}

fn aad(request_id: Uuid, team_id: Uuid, version: u32) -> Vec<u8> {
    format!("ssi-credentials/v1|{request_id}|{team_id}|{version}").into_bytes()
}

impl Vault {
    pub fn new(kms: aws_sdk_kms::Client, key_id: impl Into<String>) -> Self {
        Self {
            kms,
            key_id: key_id.into(),
        }
    }

    /// Encrypts `credentials` (a JSON object) for `request_id` of `team_id`.
    pub async fn seal(
        &self,
        request_id: Uuid,
        team_id: Uuid,
        version: u32,
        issued_at: &str,
        credentials: &OpenCredentials,
    ) -> Result<SealedCredentials, VaultError> {
        let out = self
            .kms
            .generate_data_key()
            .key_id(&self.key_id)
            .key_spec(DataKeySpec::Aes256)
            .set_encryption_context(Some(context(request_id, team_id)))
            .send()
            .await
            .map_err(|e| VaultError::Kms(Box::new(e)))?;
        let plain_key = SecretBox::new(Box::new(
            out.plaintext().ok_or(VaultError::Integrity)?.as_ref().to_vec(),
        ));
        let encrypted_data_key = out.ciphertext_blob().ok_or(VaultError::Integrity)?.as_ref().to_vec();
        let cipher = Aes256Gcm::new_from_slice(plain_key.expose_secret()).map_err(|_| VaultError::Integrity)?;
        let nonce: [u8; NONCE_LEN] = rand::random();
        let plaintext = SecretBox::new(Box::new(serde_json::to_vec(credentials.expose())?));
        let ciphertext = cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext.expose_secret(),
                    aad: &aad(request_id, team_id, version),
                },
            )
            .map_err(|_| VaultError::Integrity)?;
        Ok(SealedCredentials {
            request_id,
            team_id,
            version,
            issued_at: issued_at.to_string(),
            key_id: out.key_id().unwrap_or(&self.key_id).to_string(),
            encrypted_data_key,
            nonce: nonce.to_vec(),
            ciphertext,
        })
    }

    /// Decrypts credentials that were sealed for `request_id` of `team_id`.
    pub async fn open(
        &self,
        sealed: &SealedCredentials,
        request_id: Uuid,
        team_id: Uuid,
    ) -> Result<OpenCredentials, VaultError> {
        let out = self
            .kms
            .decrypt()
            .key_id(&sealed.key_id)
            .ciphertext_blob(Blob::new(sealed.encrypted_data_key.clone()))
            .set_encryption_context(Some(context(request_id, team_id)))
            .send()
            .await
            .map_err(|e| match e.as_service_error() {
                Some(aws_sdk_kms::operation::decrypt::DecryptError::InvalidCiphertextException(_)) => {
                    VaultError::Integrity
                }
                _ => VaultError::Kms(Box::new(e)),
            })?;
        let plain_key = SecretBox::new(Box::new(
            out.plaintext().ok_or(VaultError::Integrity)?.as_ref().to_vec(),
        ));
        let cipher = Aes256Gcm::new_from_slice(plain_key.expose_secret()).map_err(|_| VaultError::Integrity)?;
        let nonce: [u8; NONCE_LEN] = sealed.nonce.as_slice().try_into().map_err(|_| VaultError::Integrity)?;
        let plaintext = SecretBox::new(Box::new(
            cipher
                .decrypt(
                    &Nonce::from(nonce),
                    Payload {
                        msg: &sealed.ciphertext,
                        aad: &aad(request_id, team_id, sealed.version),
                    },
                )
                .map_err(|_| VaultError::Integrity)?,
        ));
        Ok(OpenCredentials(serde_json::from_slice(plaintext.expose_secret())?))
    }
}

/// A KMS client: the normal AWS chain, or locally the endpoint in `KMS_ENDPOINT`
/// (moto), with `static_key` (key id, secret) when given instead of the chain.
pub async fn kms_client(
    region: &str,
    endpoint: Option<&str>,
    static_key: Option<(&str, &secrecy::SecretString)>,
) -> aws_sdk_kms::Client {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region.to_string()))
        .timeout_config(crate::app::timeout_config())
        .retry_config(crate::app::retry_config());
    if let Some(endpoint) = endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    if let Some((id, secret)) = static_key {
        loader = loader.credentials_provider(aws_sdk_kms::config::Credentials::new(
            id,
            secret.expose_secret(),
            None,
            None,
            "static",
        ));
    }
    aws_sdk_kms::Client::new(&loader.load().await)
}
