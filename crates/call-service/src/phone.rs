//! Phone numbers in E.164: `+`, a non-zero country digit, 7 to 15 digits in all.

use std::fmt;

use serde::{Serialize, Serializer};

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Parses a number; spaces, dashes, dots and parentheses between digits are allowed and removed.
    pub fn parse(input: &str) -> Result<Self, String> {
        let trimmed = input.trim();
        let Some(rest) = trimmed.strip_prefix('+') else {
            return Err(format!("`{}` is not in E.164 form (it must start with +)", shorten(trimmed)));
        };
        let digits: String = rest.chars().filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')')).collect();
        if !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(format!("`{}` contains characters other than digits", shorten(trimmed)));
        }
        if !(7..=15).contains(&digits.len()) || digits.starts_with('0') {
            return Err(format!(
                "`{}` is not a valid E.164 number (7 to 15 digits, no leading 0)",
                shorten(trimmed)
            ));
        }
        Ok(Self(format!("+{digits}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn shorten(value: &str) -> String {
    value.chars().take(32).collect()
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for PhoneNumber {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_numbers_are_normalised() {
        assert_eq!(PhoneNumber::parse("+91 98123-45678").unwrap().as_str(), "+919812345678");
        assert_eq!(PhoneNumber::parse(" +1 (555) 000.1111 ").unwrap().as_str(), "+15550001111");
    }

    #[test]
    fn invalid_numbers_say_why() {
        for bad in ["919812345678", "+0123456789", "+12", "+1234567890123456", "+91abc45678", ""] {
            assert!(PhoneNumber::parse(bad).is_err(), "{bad}");
        }
    }
}
