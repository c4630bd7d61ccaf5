//! What users and operators ask about slots: a user's usage, limits and queue per call type, and
//! an operator's force-release of a stuck slot (audited).

use serde::Serialize;
use serde_json::json;

use super::ending::{end_call, Ending};
use super::store::lock_call;
use crate::error::CallError;
use crate::service::CallService;
use crate::users::get_user;
use crate::{CallId, CallType, UserId};

/// Active, limit and queued for one call type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TypeUsage {
    pub active: i64,
    pub limit: i64,
    pub queued: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ConcurrencyView {
    pub direct: TypeUsage,
    pub campaign: TypeUsage,
}

/// What a force-release freed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ForceReleased {
    pub call_id: CallId,
    pub user_id: UserId,
    pub call_type: CallType,
    pub bolna_execution_id: Option<String>,
}

impl CallService {
    pub async fn concurrency_of(&self, user: UserId) -> Result<ConcurrencyView, CallError> {
        let mut conn = self.pool().acquire().await?;
        // The limits as they are now (an authenticated user's may come from the key cache).
        let limits = get_user(&mut conn, user).await?.ok_or(CallError::UnknownUser)?;
        let usage = concurrency::usage_of(&mut conn, user).await?;
        let queued = sqlx::query!(
            r#"SELECT count(*) FILTER (WHERE call_type = 'direct') AS "direct!",
                      count(*) FILTER (WHERE call_type = 'campaign') AS "campaign!"
               FROM slot_queue WHERE user_id = $1"#,
            user as UserId
        )
        .fetch_one(&mut *conn)
        .await?;
        Ok(ConcurrencyView {
            direct: TypeUsage {
                active: usage.direct,
                limit: limits.direct_call_limit.into(),
                queued: queued.direct,
            },
            campaign: TypeUsage {
                active: usage.campaign,
                limit: limits.campaign_call_limit.into(),
                queued: queued.campaign,
            },
        })
    }

    /// Frees the slot of `call` whatever its state (an operator's decision), marks the call
    /// `failed` unless it already ended, and writes the audit log. `None` if it held no slot.
    #[tracing::instrument(name = "Force-release a slot", skip(self))]
    pub async fn force_release(
        &self,
        call: CallId,
        actor: &str,
        reason: &str,
    ) -> Result<Option<ForceReleased>, CallError> {
        let service = self.clone();
        let (actor, reason) = (actor.to_owned(), reason.to_owned());
        self.detached(async move { service.force_release_now(call, &actor, &reason).await }).await
    }

    async fn force_release_now(
        &self,
        call: CallId,
        actor: &str,
        reason: &str,
    ) -> Result<Option<ForceReleased>, CallError> {
        let mut tx = self.pool().begin().await?;
        // Lock order: the call's row first, then its slot (as every other path does).
        lock_call(&mut tx, call).await?;
        let Some(slot) = concurrency::slot_of(&mut tx, call).await? else { return Ok(None) };
        let why = format!("slot force-released by an operator: {reason}");
        let next = end_call(&mut tx, call, Ending::Failed(&why), &self.slot_policy(), self.now()).await?;
        let details = json!({"reason": reason, "user_id": slot.user_id, "call_type": slot.call_type, "bolna_execution_id": slot.bolna_execution_id});
        crate::audit::record_audit(&mut tx, actor, "force_release", Some(call.as_uuid()), details).await?;
        tx.commit().await?;
        tracing::warn!(call_id = %call, actor, reason, "slot force-released");
        self.start_after_commit(next);
        Ok(Some(ForceReleased {
            call_id: call,
            user_id: slot.user_id,
            call_type: slot.call_type,
            bolna_execution_id: slot.bolna_execution_id,
        }))
    }
}
