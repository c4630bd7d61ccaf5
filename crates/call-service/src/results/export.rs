//! Exports, streamed page by page: a campaign's results (one row per contact) and a user's direct
//! calls over a time range, as CSV or JSON lines. Each page is one short query on a pooled
//! connection, so an export of any size holds one page in memory and no transaction open; rows
//! written while it runs may or may not appear (the export is not a snapshot).
//!
//! CSV columns are fixed except for two families, found before the first row: `variables.<name>`
//! (every variable name among the campaign's contacts) and `extracted_data.<name>` (every top-level
//! key of the extracted data among the exported calls). A text value is written as is; any other
//! JSON value as its JSON text; a missing one as an empty cell. JSON lines keep both as objects.

use chrono::{DateTime, Utc};
use futures::stream::{self, Stream, StreamExt};
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::UserId;

/// Rows per page (one query each).
const PAGE: i64 = 1_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    JsonLines,
}

impl ExportFormat {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "csv" => Some(Self::Csv),
            "jsonl" => Some(Self::JsonLines),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Csv => "text/csv; charset=utf-8",
            Self::JsonLines => "application/jsonl; charset=utf-8",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::JsonLines => "jsonl",
        }
    }
}

/// One contact's results.
#[derive(Debug, Serialize)]
struct ContactResult {
    #[serde(skip)]
    id: Uuid,
    phone_number: String,
    name: Option<String>,
    variables: Value,
    status: String,
    attempts: i32,
    last_outcome: Option<String>,
    /// Over every attempt.
    talk_time_seconds: f64,
    /// Over every attempt, in Bolna's currency.
    cost: f64,
    /// Of the last attempt.
    extracted_data: Option<Value>,
    recording_url: Option<String>,
    last_call_id: Option<Uuid>,
}

/// One direct call.
#[derive(Debug, Serialize)]
struct DirectCall {
    id: Uuid,
    created_at: DateTime<Utc>,
    agent_id: String,
    recipient_phone_number: String,
    from_phone_number: Option<String>,
    status: String,
    outcome: Option<String>,
    started_at: Option<DateTime<Utc>>,
    ended_at: Option<DateTime<Utc>>,
    talk_time_seconds: Option<f64>,
    cost: Option<f64>,
    recording_url: Option<String>,
    bolna_execution_id: Option<String>,
    error: Option<String>,
    extracted_data: Option<Value>,
}

/// The direct calls created in `[from, to)`.
#[derive(Debug, Clone, Copy)]
pub struct CallExportRange {
    pub user: UserId,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

type Chunk = Result<Vec<u8>, sqlx::Error>;

/// A campaign's results, one contact per row, in the order the contacts were added.
pub async fn campaign_results(
    pool: PgPool,
    campaign: Uuid,
    format: ExportFormat,
) -> sqlx::Result<impl Stream<Item = Chunk> + Send + 'static> {
    let header = match format {
        ExportFormat::Csv => {
            let mut conn = pool.acquire().await?;
            let (variables, extracted) = campaign_columns(&mut conn, campaign).await?;
            Some((variables, extracted))
        }
        ExportFormat::JsonLines => None,
    };
    let first = header.as_ref().map(|(variables, extracted)| {
        let mut fixed = vec!["phone_number".to_owned(), "name".to_owned()];
        fixed.extend(variables.iter().map(|v| format!("variables.{v}")));
        fixed.extend(["status", "attempts", "last_outcome", "talk_time_seconds", "cost"].map(str::to_owned));
        fixed.extend(extracted.iter().map(|k| format!("extracted_data.{k}")));
        fixed.extend(["recording_url", "last_call_id"].map(str::to_owned));
        csv_line(fixed.iter().map(String::as_str))
    });
    let pages = stream::try_unfold(Some(None::<Uuid>), move |cursor| {
        let pool = pool.clone();
        let header = header.clone();
        async move {
            let Some(after) = cursor else { return Ok(None) };
            let mut conn = pool.acquire().await?;
            let rows = contact_results_page(&mut conn, campaign, after, PAGE).await?;
            let next = (rows.len() as i64 == PAGE).then(|| rows.last().map(|r| r.id));
            let mut chunk = Vec::new();
            for row in &rows {
                match &header {
                    Some((variables, extracted)) => chunk.extend(contact_csv_row(row, variables, extracted)),
                    None => json_line(&mut chunk, row),
                }
            }
            Ok(Some((chunk, next)))
        }
    });
    Ok(stream::iter(first.map(Ok)).chain(pages))
}

/// The user's direct calls created in the range, oldest first.
pub async fn direct_calls(
    pool: PgPool,
    range: CallExportRange,
    format: ExportFormat,
) -> sqlx::Result<impl Stream<Item = Chunk> + Send + 'static> {
    let extracted = match format {
        ExportFormat::Csv => {
            let mut conn = pool.acquire().await?;
            Some(direct_call_columns(&mut conn, range).await?)
        }
        ExportFormat::JsonLines => None,
    };
    let first = extracted.as_ref().map(|extracted| {
        let mut columns: Vec<String> = [
            "id",
            "created_at",
            "agent_id",
            "recipient_phone_number",
            "from_phone_number",
            "status",
            "outcome",
            "started_at",
            "ended_at",
            "talk_time_seconds",
            "cost",
            "recording_url",
            "bolna_execution_id",
            "error",
        ]
        .map(str::to_owned)
        .to_vec();
        columns.extend(extracted.iter().map(|k| format!("extracted_data.{k}")));
        csv_line(columns.iter().map(String::as_str))
    });
    let pages = stream::try_unfold(Some(None::<(DateTime<Utc>, Uuid)>), move |cursor| {
        let pool = pool.clone();
        let extracted = extracted.clone();
        async move {
            let Some(after) = cursor else { return Ok(None) };
            let mut conn = pool.acquire().await?;
            let rows = direct_calls_page(&mut conn, range, after, PAGE).await?;
            let next = (rows.len() as i64 == PAGE).then(|| rows.last().map(|r| (r.created_at, r.id)));
            let mut chunk = Vec::new();
            for row in &rows {
                match &extracted {
                    Some(extracted) => chunk.extend(direct_call_csv_row(row, extracted)),
                    None => json_line(&mut chunk, row),
                }
            }
            Ok(Some((chunk, next)))
        }
    });
    Ok(stream::iter(first.map(Ok)).chain(pages))
}

/// The variable names of the campaign's contacts, and the extracted-data keys of their last calls.
async fn campaign_columns(
    conn: &mut PgConnection,
    campaign: Uuid,
) -> sqlx::Result<(Vec<String>, Vec<String>)> {
    let variables = sqlx::query_scalar!(
        r#"SELECT DISTINCT jsonb_object_keys(variables) AS "key!" FROM campaign_contacts WHERE campaign_id = $1
           ORDER BY 1"#,
        campaign
    )
    .fetch_all(&mut *conn)
    .await?;
    let extracted = sqlx::query_scalar!(
        r#"SELECT DISTINCT jsonb_object_keys(c.extracted_data) AS "key!"
           FROM campaign_contacts cc JOIN calls c ON c.id = cc.last_call_id
           WHERE cc.campaign_id = $1 AND jsonb_typeof(c.extracted_data) = 'object'
           ORDER BY 1"#,
        campaign
    )
    .fetch_all(conn)
    .await?;
    Ok((variables, extracted))
}

async fn direct_call_columns(conn: &mut PgConnection, range: CallExportRange) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar!(
        r#"SELECT DISTINCT jsonb_object_keys(extracted_data) AS "key!" FROM calls
           WHERE user_id = $1 AND call_type = 'direct' AND created_at >= $2 AND created_at < $3
             AND jsonb_typeof(extracted_data) = 'object'
           ORDER BY 1"#,
        range.user as UserId,
        range.from,
        range.to
    )
    .fetch_all(conn)
    .await
}

async fn contact_results_page(
    conn: &mut PgConnection,
    campaign: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<ContactResult>> {
    sqlx::query_as!(
        ContactResult,
        r#"SELECT cc.id, cc.phone_number, cc.name, cc.variables, cc.status, cc.attempts, cc.last_outcome,
                  spent.talk AS "talk_time_seconds!", spent.cost AS "cost!",
                  lc.extracted_data AS "extracted_data?", lc.recording_url AS "recording_url?", cc.last_call_id
           FROM campaign_contacts cc
           LEFT JOIN calls lc ON lc.id = cc.last_call_id
           CROSS JOIN LATERAL (
               SELECT coalesce(sum(conversation_duration), 0) AS talk, coalesce(sum(total_cost), 0) AS cost
               FROM calls WHERE contact_id = cc.id) spent
           WHERE cc.campaign_id = $1 AND ($2::uuid IS NULL OR cc.id > $2)
           ORDER BY cc.id LIMIT $3"#,
        campaign,
        after,
        limit
    )
    .fetch_all(conn)
    .await
}

async fn direct_calls_page(
    conn: &mut PgConnection,
    range: CallExportRange,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> sqlx::Result<Vec<DirectCall>> {
    let (after_at, after_id) = after.unzip();
    sqlx::query_as!(
        DirectCall,
        r#"SELECT id, created_at, agent_id, recipient_phone_number, from_phone_number, status,
                  call_outcome(status, answered_by_voice_mail) AS outcome, started_at, ended_at,
                  conversation_duration AS talk_time_seconds, total_cost AS cost, recording_url,
                  bolna_execution_id, error, extracted_data
           FROM calls
           WHERE user_id = $1 AND call_type = 'direct' AND created_at >= $2 AND created_at < $3
             AND ($4::timestamptz IS NULL OR (created_at, id) > ($4, $5))
           ORDER BY created_at, id LIMIT $6"#,
        range.user as UserId,
        range.from,
        range.to,
        after_at,
        after_id,
        limit
    )
    .fetch_all(conn)
    .await
}

fn json_line(out: &mut Vec<u8>, row: &impl Serialize) {
    // Serialising these rows of plain fields cannot fail; a failure would write an empty line.
    let _ = serde_json::to_writer(&mut *out, row);
    out.push(b'\n');
}

/// One CSV record (RFC 4180: quoted where needed, CRLF-free `\n` line ends).
fn csv_line<'a>(cells: impl IntoIterator<Item = &'a str>) -> Vec<u8> {
    let mut writer =
        csv::WriterBuilder::new().terminator(csv::Terminator::Any(b'\n')).from_writer(Vec::new());
    // Writing to memory cannot fail.
    let _ = writer.write_record(cells);
    writer.into_inner().unwrap_or_default()
}

/// A JSON value as a cell: text as is, anything else as its JSON, nothing as empty.
fn cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    }
}

fn object_cells<'a>(
    object: Option<&'a Map<String, Value>>,
    keys: &'a [String],
) -> impl Iterator<Item = String> + 'a {
    keys.iter().map(move |key| cell(object.and_then(|o| o.get(key))))
}

fn number(value: Option<f64>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

fn contact_csv_row(row: &ContactResult, variables: &[String], extracted: &[String]) -> Vec<u8> {
    let mut cells = vec![row.phone_number.clone(), row.name.clone().unwrap_or_default()];
    cells.extend(object_cells(row.variables.as_object(), variables));
    cells.extend([
        row.status.clone(),
        row.attempts.to_string(),
        row.last_outcome.clone().unwrap_or_default(),
        number(Some(row.talk_time_seconds)),
        number(Some(row.cost)),
    ]);
    cells.extend(object_cells(row.extracted_data.as_ref().and_then(Value::as_object), extracted));
    cells.extend([
        row.recording_url.clone().unwrap_or_default(),
        row.last_call_id.map(|id| id.to_string()).unwrap_or_default(),
    ]);
    csv_line(cells.iter().map(String::as_str))
}

fn direct_call_csv_row(row: &DirectCall, extracted: &[String]) -> Vec<u8> {
    let time = |t: Option<DateTime<Utc>>| t.map(|t| t.to_rfc3339()).unwrap_or_default();
    let mut cells = vec![
        row.id.to_string(),
        row.created_at.to_rfc3339(),
        row.agent_id.clone(),
        row.recipient_phone_number.clone(),
        row.from_phone_number.clone().unwrap_or_default(),
        row.status.clone(),
        row.outcome.clone().unwrap_or_default(),
        time(row.started_at),
        time(row.ended_at),
        number(row.talk_time_seconds),
        number(row.cost),
        row.recording_url.clone().unwrap_or_default(),
        row.bolna_execution_id.clone().unwrap_or_default(),
        row.error.clone().unwrap_or_default(),
    ];
    cells.extend(object_cells(row.extracted_data.as_ref().and_then(Value::as_object), extracted));
    csv_line(cells.iter().map(String::as_str))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_keep_text_as_is_and_quote_what_csv_needs() {
        assert_eq!(cell(Some(&Value::String("a, \"b\"".into()))), "a, \"b\"");
        assert_eq!(cell(Some(&serde_json::json!({"x": 1}))), "{\"x\":1}");
        assert_eq!(cell(Some(&Value::Null)), "");
        assert_eq!(csv_line(["a, \"b\"", "c\nd", "e"]), b"\"a, \"\"b\"\"\",\"c\nd\",e\n".to_vec());
    }
}
