//! API keys: `sb_` followed by 40 random alphanumerics. Only a SHA-256 of the key is stored, so a
//! database leak does not leak keys; the key itself is shown once, when it is issued.

use rand::distributions::Alphanumeric;
use rand::Rng;
use sha2::{Digest, Sha256};

const PREFIX: &str = "sb_";
const RANDOM_LEN: usize = 40;

/// A freshly issued key (the only time its text exists on our side).
#[derive(Clone)]
pub struct ApiKey(String);

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKey({}…)", self.display_prefix())
    }
}

/// `prefix` followed by `len` random alphanumerics: API keys, event-stream tickets.
pub(crate) fn random_secret(prefix: &str, len: usize) -> String {
    let random: String = rand::thread_rng().sample_iter(&Alphanumeric).take(len).map(char::from).collect();
    format!("{prefix}{random}")
}

/// Whether `presented` is `prefix` followed by exactly `len` alphanumerics (checked before a query).
pub(crate) fn secret_is_plausible(presented: &str, prefix: &str, len: usize) -> bool {
    presented.len() == prefix.len() + len
        && presented.starts_with(prefix)
        && presented[prefix.len()..].bytes().all(|b| b.is_ascii_alphanumeric())
}

impl ApiKey {
    pub fn generate() -> Self {
        Self(random_secret(PREFIX, RANDOM_LEN))
    }

    /// The key's text, to show to its owner once.
    pub fn reveal(&self) -> &str {
        &self.0
    }

    /// The first characters, stored to tell keys apart in listings.
    pub fn display_prefix(&self) -> &str {
        &self.0[..PREFIX.len() + 6]
    }

    pub fn hash(&self) -> ApiKeyHash {
        ApiKeyHash::of(&self.0)
    }
}

/// SHA-256 of a presented key, for look-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyHash(pub [u8; 32]);

impl ApiKeyHash {
    pub fn of(presented: &str) -> Self {
        Self(Sha256::digest(presented.as_bytes()).into())
    }

    /// Whether `presented` has the shape of one of our keys (cheap pre-check before a query).
    pub fn plausible(presented: &str) -> bool {
        secret_is_plausible(presented, PREFIX, RANDOM_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_plausible_distinct_and_hash_stably() {
        let a = ApiKey::generate();
        let b = ApiKey::generate();
        assert!(ApiKeyHash::plausible(a.reveal()));
        assert_ne!(a.reveal(), b.reveal());
        assert_eq!(a.hash(), ApiKeyHash::of(a.reveal()));
        assert!(!format!("{a:?}").contains(a.reveal()));
        assert!(!ApiKeyHash::plausible("sb_short"));
    }
}
