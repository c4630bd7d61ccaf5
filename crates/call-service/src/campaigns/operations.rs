//! What users do with campaigns: create, change, list, add contacts, and move them through
//! draft → running ⇄ paused → completed | canceled.

use uuid::Uuid;

use super::model::{Campaign, CampaignSettings, CampaignStatus, NewContact};
use super::repository::{add_contacts, insert_campaign, update_settings};
use crate::error::CallError;
use crate::service::CallService;
use crate::{select_campaign, UserId};

/// A state change asked for by the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CampaignAction {
    Start,
    Pause,
    Resume,
    Cancel,
}

impl CampaignAction {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "start" => Some(Self::Start),
            "pause" => Some(Self::Pause),
            "resume" => Some(Self::Resume),
            "cancel" => Some(Self::Cancel),
            _ => None,
        }
    }

    /// The status the action leads to from `from`, if the state machine allows it.
    fn target(self, from: CampaignStatus) -> Option<CampaignStatus> {
        use CampaignStatus::*;
        match (self, from) {
            (Self::Start, Draft) | (Self::Resume, Paused) => Some(Running),
            (Self::Pause, Running) => Some(Paused),
            (Self::Cancel, Draft | Running | Paused) => Some(Canceled),
            _ => None,
        }
    }
}

impl CallService {
    /// The user's campaign limit (`max_concurrency` may not exceed it).
    async fn campaign_limit(&self, user: UserId) -> Result<i32, CallError> {
        let mut conn = self.pool().acquire().await?;
        let user = crate::users::get_user(&mut conn, user).await?.ok_or(CallError::UnknownUser)?;
        Ok(user.campaign_call_limit)
    }

    fn check_concurrency(settings: &CampaignSettings, limit: i32) -> Result<(), CallError> {
        if settings.max_concurrency > limit {
            return Err(CallError::Invalid(format!(
                "max_concurrency {} exceeds your campaign call limit of {limit}",
                settings.max_concurrency
            )));
        }
        Ok(())
    }

    pub async fn create_campaign(
        &self,
        user: UserId,
        settings: &CampaignSettings,
    ) -> Result<Campaign, CallError> {
        Self::check_concurrency(settings, self.campaign_limit(user).await?)?;
        let mut tx = self.pool().begin().await?;
        let campaign = insert_campaign(&mut tx, user, settings, self.now()).await?;
        tx.commit().await?;
        Ok(campaign)
    }

    pub async fn campaign(&self, user: UserId, id: Uuid) -> Result<Campaign, CallError> {
        let mut conn = self.pool().acquire().await?;
        select_campaign!("WHERE id = $1 AND user_id = $2", id, user as UserId)
            .fetch_optional(&mut *conn)
            .await?
            .ok_or(CallError::NotFound)
    }

    /// A page of the user's campaigns, newest first, after the campaign `after`.
    pub async fn campaigns(
        &self,
        user: UserId,
        after: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<Campaign>, CallError> {
        let mut conn = self.pool().acquire().await?;
        Ok(select_campaign!(
            "WHERE user_id = $1 AND ($2::uuid IS NULL OR id < $2) ORDER BY id DESC LIMIT $3",
            user as UserId,
            after,
            limit
        )
        .fetch_all(&mut *conn)
        .await?)
    }

    /// Replaces the settings of a `draft` or `paused` campaign.
    pub async fn update_campaign(
        &self,
        user: UserId,
        id: Uuid,
        settings: &CampaignSettings,
    ) -> Result<Campaign, CallError> {
        Self::check_concurrency(settings, self.campaign_limit(user).await?)?;
        let mut tx = self.pool().begin().await?;
        let campaign = select_campaign!("WHERE id = $1 AND user_id = $2 FOR UPDATE", id, user as UserId)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(CallError::NotFound)?;
        if !matches!(campaign.status, CampaignStatus::Draft | CampaignStatus::Paused) {
            return Err(CallError::Conflict(
                "campaign_not_editable",
                format!("a {} campaign cannot be changed", campaign.status.as_str()),
            ));
        }
        update_settings(&mut tx, id, settings, self.now()).await?;
        let campaign = select_campaign!("WHERE id = $1", id).fetch_one(&mut *tx).await?;
        tx.commit().await?;
        Ok(campaign)
    }

    pub async fn campaign_action(
        &self,
        user: UserId,
        id: Uuid,
        action: CampaignAction,
    ) -> Result<Campaign, CallError> {
        let mut tx = self.pool().begin().await?;
        let campaign = select_campaign!("WHERE id = $1 AND user_id = $2 FOR UPDATE", id, user as UserId)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(CallError::NotFound)?;
        let Some(target) = action.target(campaign.status) else {
            return Err(CallError::Conflict(
                "campaign_transition_not_allowed",
                format!("cannot {action:?} a {} campaign", campaign.status.as_str()).to_lowercase(),
            ));
        };
        sqlx::query!(
            r#"UPDATE campaigns SET status = $2,
                      started_at = CASE WHEN $2 = 'running' THEN COALESCE(started_at, now()) ELSE started_at END,
                      next_due_at = CASE WHEN $2 = 'running' THEN $3::timestamptz ELSE NULL END,
                      ended_at = CASE WHEN $2 = 'canceled' THEN now() ELSE ended_at END,
                      pause_reason = CASE WHEN $2 = 'paused' THEN 'user' END
               WHERE id = $1"#,
            id,
            target.as_str(),
            self.now()
        )
        .execute(&mut *tx)
        .await?;
        if target == CampaignStatus::Canceled {
            // Contacts not yet dialled stop; calls already live finish.
            sqlx::query!(
                "UPDATE campaign_contacts SET status = 'canceled' WHERE campaign_id = $1 AND status IN ('pending', 'retry_scheduled')",
                id
            )
            .execute(&mut *tx)
            .await?;
        }
        if target == CampaignStatus::Running {
            concurrency::announce_free_capacity(&mut tx).await?;
        }
        let campaign = select_campaign!("WHERE id = $1", id).fetch_one(&mut *tx).await?;
        tx.commit().await?;
        tracing::info!(campaign_id = %id, status = campaign.status.as_str(), "campaign status changed");
        Ok(campaign)
    }

    /// Adds contacts to a campaign that is not over. Returns (accepted, duplicates).
    pub async fn add_campaign_contacts(
        &self,
        user: UserId,
        id: Uuid,
        contacts: &[NewContact],
    ) -> Result<(u64, u64), CallError> {
        let campaign = self.campaign(user, id).await?;
        if matches!(campaign.status, CampaignStatus::Completed | CampaignStatus::Canceled) {
            return Err(CallError::Conflict(
                "campaign_over",
                format!("the campaign is {}", campaign.status.as_str()),
            ));
        }
        let mut tx = self.pool().begin().await?;
        let counts = add_contacts(&mut tx, id, contacts, self.now()).await?;
        tx.commit().await?;
        Ok(counts)
    }
}
