//! Users (tenants with their own slot limits) and their API keys.

mod api_key;
mod key_cache;
mod key_repository;
mod key_upkeep;
mod repository;

pub(crate) use api_key::{random_secret, secret_is_plausible};
pub use api_key::{ApiKey, ApiKeyHash};
pub use key_cache::KeyCache;
pub use key_repository::{
    find_key_owner, find_user_by_api_key, issue_api_key, list_api_keys, revoke_api_key,
    revoke_api_keys_named, ApiKeyRecord, IssuedKey, KeyOwner, MAX_KEYS_PER_USER,
};
pub use key_upkeep::{run_key_upkeep, REVOCATION_POLL, USE_FLUSH};
pub use repository::{
    create_user, find_user_by_name, get_user, list_users, update_limits, BudgetChange, LimitsChange, NewUser,
    NumberCapChange, User,
};
