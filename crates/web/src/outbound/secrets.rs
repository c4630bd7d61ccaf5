//! Endpoint secrets: `whsec_` and the base64 of 24 random bytes (the Standard Webhooks form; the
//! bytes are the HMAC key). Stored sealed with AES-256-GCM under `outbound_webhooks.secret_key`, a
//! fresh nonce per seal, so a copy of the database alone cannot sign.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};

const PREFIX: &str = "whsec_";
const SECRET_BYTES: usize = 24;

/// An endpoint's signing key. Its `Debug` hides it.
#[derive(Clone)]
pub struct EndpointSecret(Vec<u8>);

impl std::fmt::Debug for EndpointSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EndpointSecret([REDACTED])")
    }
}

impl EndpointSecret {
    /// A new random secret.
    pub fn generate() -> Result<Self, String> {
        let mut bytes = vec![0u8; SECRET_BYTES];
        SystemRandom::new().fill(&mut bytes).map_err(|_| "the system's random source failed".to_owned())?;
        Ok(Self(bytes))
    }

    /// `whsec_…`, as shown to the user once.
    pub fn reveal(&self) -> String {
        format!("{PREFIX}{}", STANDARD.encode(&self.0))
    }

    pub fn key(&self) -> &[u8] {
        &self.0
    }
}

/// Seals and opens secrets with the configured key.
#[derive(Clone)]
pub struct SecretSealer {
    key: std::sync::Arc<LessSafeKey>,
}

impl std::fmt::Debug for SecretSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretSealer([REDACTED])")
    }
}

impl SecretSealer {
    /// From `outbound_webhooks.secret_key`: base64 of exactly 32 bytes.
    pub fn from_config(text: &str) -> Result<Self, String> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| "must be base64 (e.g. the output of `openssl rand -base64 32`)".to_owned())?;
        let key = UnboundKey::new(&AES_256_GCM, &bytes)
            .map_err(|_| format!("must decode to 32 bytes, not {}", bytes.len()))?;
        Ok(Self { key: std::sync::Arc::new(LessSafeKey::new(key)) })
    }

    /// Nonce then ciphertext and tag.
    pub fn seal(&self, secret: &EndpointSecret) -> Result<Vec<u8>, String> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).map_err(|_| "the system's random source failed".to_owned())?;
        let mut sealed = secret.0.clone();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut sealed)
            .map_err(|_| "sealing failed".to_owned())?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// The secret, if `sealed` was sealed with this key.
    pub fn open(&self, sealed: &[u8]) -> Option<EndpointSecret> {
        if sealed.len() < NONCE_LEN {
            return None;
        }
        let (nonce, rest) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut buffer = rest.to_vec();
        let opened = self.key.open_in_place(nonce, Aad::empty(), &mut buffer).ok()?;
        Some(EndpointSecret(opened.to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_with_its_key_only() {
        let sealer = SecretSealer::from_config(&STANDARD.encode([7u8; 32])).unwrap();
        let other = SecretSealer::from_config(&STANDARD.encode([8u8; 32])).unwrap();
        let secret = EndpointSecret::generate().unwrap();
        let sealed = sealer.seal(&secret).unwrap();
        assert_ne!(&sealed[NONCE_LEN..NONCE_LEN + SECRET_BYTES], secret.key());
        assert_eq!(sealer.open(&sealed).unwrap().key(), secret.key());
        assert!(other.open(&sealed).is_none());
        assert!(secret.reveal().starts_with("whsec_"));
        assert!(!format!("{secret:?}").contains(&secret.reveal()[6..]));
    }

    #[test]
    fn a_key_of_the_wrong_length_is_refused() {
        assert!(SecretSealer::from_config(&STANDARD.encode([1u8; 16])).is_err());
        assert!(SecretSealer::from_config("not base64!").is_err());
    }
}
