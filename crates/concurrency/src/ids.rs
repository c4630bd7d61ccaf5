//! Identifiers and the call type, as types: a `CallId` can never be passed where a `UserId` is
//! expected.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, sqlx::Type)]
        #[serde(transparent)]
        #[sqlx(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new, time-ordered id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl From<Uuid> for $name {
            fn from(value: Uuid) -> Self {
                Self(value)
            }
        }

        impl From<$name> for Uuid {
            fn from(value: $name) -> Self {
                value.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;

            fn from_str(value: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(value).map(Self)
            }
        }
    };
}

uuid_id!(
    /// A user (a tenant of Switchboard, with its own limits and API keys).
    UserId
);
uuid_id!(
    /// A call; also the id of the slot it holds.
    CallId
);

/// Which of a user's slot pools a call uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallType {
    Direct,
    Campaign,
}

impl CallType {
    pub const ALL: [CallType; 2] = [CallType::Direct, CallType::Campaign];

    pub fn as_str(self) -> &'static str {
        match self {
            CallType::Direct => "direct",
            CallType::Campaign => "campaign",
        }
    }
}

impl fmt::Display for CallType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A call type string that is neither `direct` nor `campaign`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown call type `{0}` (expected `direct` or `campaign`)")]
pub struct UnknownCallType(pub String);

impl FromStr for CallType {
    type Err = UnknownCallType;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "direct" => Ok(CallType::Direct),
            "campaign" => Ok(CallType::Campaign),
            other => Err(UnknownCallType(other.to_owned())),
        }
    }
}

impl TryFrom<String> for CallType {
    type Error = UnknownCallType;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_types_round_trip_through_their_names() {
        for call_type in CallType::ALL {
            assert_eq!(call_type.as_str().parse::<CallType>(), Ok(call_type));
        }
        assert!("Direct".parse::<CallType>().is_err());
    }

    #[test]
    fn ids_parse_and_print_as_uuids() {
        let id = CallId::new();
        assert_eq!(id.to_string().parse::<CallId>().ok(), Some(id));
        assert!("not-a-uuid".parse::<UserId>().is_err());
    }
}
