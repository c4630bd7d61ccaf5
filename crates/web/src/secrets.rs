//! Comparing secrets (API keys, tokens) without leaking, by timing, how much of one matched.

use subtle::ConstantTimeEq;

/// Constant-time equality of two secrets.
pub fn secrets_match(presented: &str, expected: &str) -> bool {
    presented.as_bytes().ct_eq(expected.as_bytes()).into()
}
