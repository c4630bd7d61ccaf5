//! Results and spend, read from the tables each time: a campaign's report, exports of contacts'
//! results and of direct calls (CSV or JSON lines, page by page), and usage by day, agent, campaign,
//! call type or user. Outcomes come from `call_outcome` (sql/calls.sql), the one definition the
//! contact retry policy uses too.

pub mod export;
pub mod report;
pub mod usage;

pub use export::{CallExportRange, ExportFormat};
pub use report::{campaign_report, CampaignReport};
pub use usage::{usage, UsageGrouping, UsageQuery, UsageReport};
