//! Users (tenants with their own slot limits) and their API keys.

mod api_key;
mod key_cache;
mod repository;

pub(crate) use api_key::{random_secret, secret_is_plausible};
pub use api_key::{ApiKey, ApiKeyHash};
pub use key_cache::KeyCache;
pub use repository::{
    create_user, find_user_by_api_key, find_user_by_key_hash, find_user_by_name, get_user, issue_api_key,
    list_users, update_limits, NewUser, User,
};
