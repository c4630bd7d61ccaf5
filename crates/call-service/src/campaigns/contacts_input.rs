//! Contacts from JSON or CSV. CSV needs a header row: the number in `contact_number` (the column
//! of Bolna's own batch files) or `phone_number`; optional `name`, `timezone`; every other column
//! becomes a variable. Bad rows are reported by line with a reason; good rows are kept.

use serde::Serialize;
use serde_json::{Map, Value};

use super::model::NewContact;
use super::window::parse_tz;
use crate::phone::PhoneNumber;

/// A row that was not accepted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RejectedRow {
    /// 1-based line (CSV: the header is line 1) or position in the JSON list.
    pub line: u64,
    pub value: String,
    pub reason: String,
}

/// One row's raw fields, before validation.
#[derive(Debug, Clone, Default)]
pub struct RawContact {
    pub phone_number: Option<String>,
    pub name: Option<String>,
    pub timezone: Option<String>,
    pub variables: Map<String, Value>,
}

/// Validates rows, numbering them from `first_line`.
pub fn validate_rows(rows: Vec<RawContact>, first_line: u64) -> (Vec<NewContact>, Vec<RejectedRow>) {
    let mut accepted = Vec::with_capacity(rows.len());
    let mut rejected = Vec::new();
    for (index, row) in rows.into_iter().enumerate() {
        let line = first_line + index as u64;
        match validate(row) {
            Ok(contact) => accepted.push(contact),
            Err((value, reason)) => rejected.push(RejectedRow { line, value, reason }),
        }
    }
    (accepted, rejected)
}

fn validate(row: RawContact) -> Result<NewContact, (String, String)> {
    let raw = row.phone_number.unwrap_or_default();
    if raw.trim().is_empty() {
        return Err((raw, "the phone number is missing".into()));
    }
    let phone_number = PhoneNumber::parse(&raw).map_err(|reason| (raw.clone(), reason))?;
    if let Some(tz) = row.timezone.as_deref().filter(|tz| !tz.trim().is_empty()) {
        parse_tz(tz.trim()).map_err(|reason| (tz.to_owned(), reason))?;
    }
    // PostgreSQL's text and jsonb cannot hold U+0000 (JSON bodies are checked on arrival; CSV here).
    let texts = [row.name.as_deref(), row.timezone.as_deref()].into_iter().flatten();
    let variables = row.variables.iter().flat_map(|(k, v)| [Some(k.as_str()), v.as_str()]).flatten();
    if texts.chain(variables).any(|text| text.contains('\0')) {
        return Err((raw, "the row contains a NUL character, which cannot be stored".into()));
    }
    if row.variables.keys().any(|k| k.starts_with("switchboard_")) {
        return Err((raw, "variables starting with `switchboard_` are reserved".into()));
    }
    Ok(NewContact {
        phone_number,
        name: row.name.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()),
        timezone: row.timezone.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()),
        variables: row.variables,
    })
}

/// Raw rows with their line numbers, and the lines that could not be read.
pub type ParsedCsv = (Vec<(u64, RawContact)>, Vec<RejectedRow>);

/// Parses CSV text into raw rows (line 2 onwards). A malformed CSV line is reported, not fatal.
pub fn parse_csv(text: &[u8]) -> Result<ParsedCsv, String> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).trim(csv::Trim::All).from_reader(text);
    let headers = reader.headers().map_err(|e| format!("the CSV header row cannot be read: {e}"))?.clone();
    let phone_column = headers
        .iter()
        .position(|h| h.eq_ignore_ascii_case("contact_number"))
        .or_else(|| headers.iter().position(|h| h.eq_ignore_ascii_case("phone_number")))
        .ok_or("the CSV needs a `contact_number` or `phone_number` column")?;
    let mut rows = Vec::new();
    let mut rejected = Vec::new();
    for (index, record) in reader.records().enumerate() {
        let line = index as u64 + 2;
        let record = match record {
            Ok(record) => record,
            Err(error) => {
                rejected.push(RejectedRow {
                    line,
                    value: String::new(),
                    reason: format!("unreadable CSV row: {error}"),
                });
                continue;
            }
        };
        let mut raw = RawContact::default();
        for (column, value) in headers.iter().zip(record.iter()) {
            match column.to_ascii_lowercase().as_str() {
                _ if headers.get(phone_column) == Some(column) => raw.phone_number = Some(value.to_owned()),
                "name" => raw.name = Some(value.to_owned()),
                "timezone" => raw.timezone = Some(value.to_owned()),
                _ => {
                    raw.variables.insert(column.to_owned(), Value::String(value.to_owned()));
                }
            }
        }
        rows.push((line, raw));
    }
    Ok((rows, rejected))
}

/// CSV text to validated contacts and rejected rows.
pub fn contacts_from_csv(text: &[u8]) -> Result<(Vec<NewContact>, Vec<RejectedRow>), String> {
    let (rows, mut rejected) = parse_csv(text)?;
    let mut accepted = Vec::with_capacity(rows.len());
    for (line, raw) in rows {
        match validate(raw) {
            Ok(contact) => accepted.push(contact),
            Err((value, reason)) => rejected.push(RejectedRow { line, value, reason }),
        }
    }
    rejected.sort_by_key(|r| r.line);
    Ok((accepted, rejected))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bolnas_batch_csv_imports_with_variables_and_bad_rows_are_reported_by_line() {
        let csv =
            "contact_number,name,order_id\n+919812345678,Asha,ORD-1\n12345,Bad,ORD-2\n+919876543210,,ORD-3\n";
        let (accepted, rejected) = contacts_from_csv(csv.as_bytes()).unwrap();
        assert_eq!(accepted.len(), 2);
        assert_eq!(accepted[0].variables["order_id"], "ORD-1");
        assert_eq!(accepted[0].name.as_deref(), Some("Asha"));
        assert_eq!(accepted[1].name, None);
        assert_eq!(rejected.len(), 1);
        assert_eq!((rejected[0].line, rejected[0].value.as_str()), (3, "12345"));
    }

    #[test]
    fn a_csv_row_with_a_nul_character_is_rejected_by_line_and_the_others_kept() {
        let csv = "phone_number,name,plan\n+15550001111,A\0sha,gold\n+15550002222,Ravi,si\0lver\n+15550003333,Mei,gold\n";
        let (accepted, rejected) = contacts_from_csv(csv.as_bytes()).unwrap();
        assert_eq!(accepted.len(), 1);
        assert_eq!(rejected.iter().map(|r| r.line).collect::<Vec<_>>(), [2, 3]);
        assert!(rejected[0].reason.contains("NUL"), "{rejected:?}");
    }

    #[test]
    fn a_csv_without_a_number_column_is_refused_whole() {
        assert!(contacts_from_csv(b"name\nAsha\n").is_err());
    }

    #[test]
    fn unknown_time_zones_are_rejected_per_row() {
        let csv = "phone_number,timezone\n+15550001111,Mars/Olympus\n+15550002222,America/New_York\n";
        let (accepted, rejected) = contacts_from_csv(csv.as_bytes()).unwrap();
        assert_eq!(accepted.len(), 1);
        assert!(rejected[0].reason.contains("IANA"));
    }
}
