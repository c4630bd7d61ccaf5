//! `switchboard users create`: make a user and print its API key once.

use anyhow::Context;
use call_service::audit::record_audit;
use call_service::users::{create_user, issue_api_key, IssuedKey, NewUser};

use crate::cli::CreateUserArgs;
use crate::settings::Settings;

pub async fn create(settings: Settings, args: CreateUserArgs) -> anyhow::Result<()> {
    let name = args.name.trim().to_owned();
    anyhow::ensure!(!name.is_empty() && name.len() <= 200, "--name must be 1 to 200 characters");
    let new = NewUser {
        name,
        direct_call_limit: to_limit("--direct-limit", args.direct_limit)?,
        campaign_call_limit: to_limit(
            "--campaign-limit",
            args.campaign_limit.unwrap_or(settings.limits.default_campaign_call_limit),
        )?,
        max_calls_per_number_per_day: None,
        monthly_budget: None,
    };
    let pool = crate::database::lazy_pool(&settings.database)?;
    crate::database::check_reachable(&settings.database).await?;
    let mut tx = pool.begin().await?;
    let user = create_user(&mut tx, &new).await.context("creating the user")?;
    let IssuedKey::Issued { key, record } =
        issue_api_key(&mut tx, user.id, "default", None).await.context("issuing the API key")?
    else {
        anyhow::bail!("a new user already holds too many API keys");
    };
    let details = serde_json::json!({"name": user.name, "direct_call_limit": user.direct_call_limit,
        "campaign_call_limit": user.campaign_call_limit, "key_id": record.id});
    record_audit(&mut tx, "cli", "create_user", Some(user.id.into()), details).await?;
    tx.commit().await?;
    println!(
        "user {} created: {} (direct limit {}, campaign limit {})",
        user.id, user.name, user.direct_call_limit, user.campaign_call_limit
    );
    println!("API key (shown once, keep it safe): {}", key.reveal());
    Ok(())
}

fn to_limit(flag: &str, value: u32) -> anyhow::Result<i32> {
    i32::try_from(value).with_context(|| format!("{flag} is too large"))
}
