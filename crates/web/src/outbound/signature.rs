//! Standard Webhooks signatures: `v1,` and the base64 HMAC-SHA256 of `{id}.{timestamp}.{body}`,
//! one per secret in use, space-separated (during a rotation's overlap both secrets sign).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ring::hmac;

/// The `webhook-signature` header's value for a body sent as message `id` at `timestamp` (Unix
/// seconds), signed with each of `keys`.
pub fn sign<'k>(id: &str, timestamp: i64, body: &str, keys: impl IntoIterator<Item = &'k [u8]>) -> String {
    let content = format!("{id}.{timestamp}.{body}");
    keys.into_iter()
        .map(|key| {
            let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), content.as_bytes());
            format!("v1,{}", STANDARD.encode(tag.as_ref()))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_specifications_example() {
        // The example of the Standard Webhooks specification (spec/standard-webhooks.md).
        let key = STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(
            sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body, [key.as_slice()]),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn every_key_signs() {
        let header = sign("msg_1", 1, "{}", [b"one".as_slice(), b"two".as_slice()]);
        assert_eq!(header.split(' ').count(), 2);
        assert!(header.split(' ').all(|part| part.starts_with("v1,")));
    }
}
