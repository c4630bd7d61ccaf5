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

impl ApiKey {
    pub fn generate() -> Self {
        let random: String =
            rand::thread_rng().sample_iter(&Alphanumeric).take(RANDOM_LEN).map(char::from).collect();
        Self(format!("{PREFIX}{random}"))
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
        presented.len() == PREFIX.len() + RANDOM_LEN
            && presented.starts_with(PREFIX)
            && presented[PREFIX.len()..].bytes().all(|b| b.is_ascii_alphanumeric())
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
