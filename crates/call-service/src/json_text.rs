//! JSON text PostgreSQL cannot store: JSON allows U+0000 inside strings, `text` and `jsonb` do not.

use serde_json::Value;

/// Removes U+0000 from every string and key of `value`.
pub fn remove_nul_characters(value: &mut Value) {
    match value {
        Value::String(text) if text.contains('\0') => text.retain(|c| c != '\0'),
        Value::Array(items) => items.iter_mut().for_each(remove_nul_characters),
        Value::Object(fields) if fields.keys().any(|key| key.contains('\0')) => {
            let old = std::mem::take(fields);
            for (key, mut item) in old {
                remove_nul_characters(&mut item);
                fields.insert(key.replace('\0', ""), item);
            }
        }
        Value::Object(fields) => fields.values_mut().for_each(remove_nul_characters),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_characters_are_removed_from_strings_and_keys_at_any_depth() {
        let mut value = serde_json::json!({"id": "a\u{0}b", "k\u{0}": [1, {"t": "\u{0}x\u{0}"}], "n": null});
        remove_nul_characters(&mut value);
        assert_eq!(value, serde_json::json!({"id": "ab", "k": [1, {"t": "x"}], "n": null}));
    }
}
