//! Campaigns: many people called through the same slot ledger, on `campaign` slots, by a scheduler
//! that honours calling windows, pacing, retries and the do-not-call list.

pub mod contacts_input;
pub(crate) mod due;
mod model;
mod operations;
mod repository;
mod scheduler;
pub(crate) mod settle;
pub mod window;

pub use model::{
    Campaign, CampaignSettings, CampaignStats, CampaignStatus, Contact, ContactStatus, NewContact,
    RetryPolicy,
};
pub use operations::CampaignAction;
pub use repository::{
    add_contacts, add_to_dnc, campaign_stats, get_campaigns_by_ids, list_all_campaigns, list_contacts,
    list_dnc, on_dnc_list, remove_from_dnc,
};
pub use scheduler::SchedulerPass;
pub use window::Window;
