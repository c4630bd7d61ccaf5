//! Who may post webhooks. Bolna signs nothing, so a shared secret is required — in the
//! `X-Webhook-Token` header (a custom header set in Bolna's dashboard) or a `token` query parameter —
//! compared in constant time; plus an optional source-IP allow-list. Behind a proxy, the client
//! address is taken from `X-Forwarded-For` only when the peer is a configured trusted proxy.

use std::net::IpAddr;

use actix_web::HttpRequest;
use secrecy::{ExposeSecret, SecretString};

use crate::problem::ApiError;
use crate::secrets::secrets_match;
use crate::settings::{parse_allowed_source, parse_ip_range, WebhookSettings};

#[derive(Debug, Clone)]
pub struct WebhookGuard {
    token: Option<SecretString>,
    allowed: Vec<(IpAddr, u8)>,
    trusted_proxies: Vec<(IpAddr, u8)>,
}

impl WebhookGuard {
    /// The lists were checked when settings loaded; an entry that does not parse is skipped.
    pub fn from_settings(settings: &WebhookSettings) -> Self {
        Self {
            token: settings.token.clone(),
            allowed: settings
                .allowed_ips
                .iter()
                .filter_map(|entry| parse_allowed_source(entry).ok())
                .flatten()
                .collect(),
            trusted_proxies: settings
                .trusted_proxies
                .iter()
                .filter_map(|entry| parse_ip_range(entry).ok())
                .collect(),
        }
    }

    /// Admits or refuses a webhook request; on success returns the client address.
    pub fn check(&self, request: &HttpRequest) -> Result<Option<IpAddr>, ApiError> {
        let peer = request.peer_addr().map(|address| address.ip());
        let forwarded = request.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok());
        let client = self.client_ip(peer, forwarded);
        if !self.allowed.is_empty()
            && !client.is_some_and(|ip| self.allowed.iter().any(|range| contains(*range, ip)))
        {
            let shown = client.map(|ip| ip.to_string()).unwrap_or_else(|| "unknown".into());
            tracing::warn!(client = %shown, "webhook from an address outside webhook.allowed_ips");
            return Err(ApiError::forbidden(format!("webhooks are not accepted from {shown}")));
        }
        let Some(expected) = &self.token else {
            tracing::error!("webhook refused: webhook.token is not configured");
            return Err(ApiError::unauthorized("webhooks are disabled: no webhook token is configured"));
        };
        let presented = request
            .headers()
            .get("x-webhook-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .or_else(|| token_from_query(request.query_string()));
        match presented {
            Some(presented) if secrets_match(&presented, expected.expose_secret()) => Ok(client),
            Some(_) => Err(ApiError::unauthorized("the webhook token is not valid")),
            None => Err(ApiError::unauthorized("send the webhook token in X-Webhook-Token or ?token=")),
        }
    }

    /// The peer, or — when the peer is a trusted proxy — the right-most address in
    /// `X-Forwarded-For` that is not itself a trusted proxy.
    pub fn client_ip(&self, peer: Option<IpAddr>, forwarded_for: Option<&str>) -> Option<IpAddr> {
        let peer = peer?;
        if !self.is_trusted(peer) {
            return Some(peer);
        }
        let Some(forwarded_for) = forwarded_for else { return Some(peer) };
        let mut client = peer;
        for hop in forwarded_for.rsplit(',') {
            match hop.trim().parse::<IpAddr>() {
                Ok(ip) => {
                    client = ip;
                    if !self.is_trusted(ip) {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        Some(client)
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|range| contains(*range, ip))
    }
}

fn token_from_query(query: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == "token").then(|| percent_decode(value))
    })
}

fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match u8::from_str_radix(&value[i + 1..i + 3], 16) {
                Ok(byte) => {
                    out.push(byte);
                    i += 3;
                    continue;
                }
                Err(_) => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn contains((network, prefix): (IpAddr, u8), ip: IpAddr) -> bool {
    match (network, ip) {
        (IpAddr::V4(net), IpAddr::V4(ip)) => {
            let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix)) };
            u32::from(net) & mask == u32::from(ip) & mask
        }
        (IpAddr::V6(net), IpAddr::V6(ip)) => {
            let mask = if prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(prefix)) };
            u128::from(net) & mask == u128::from(ip) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(allowed: &[&str], proxies: &[&str]) -> WebhookGuard {
        WebhookGuard::from_settings(&WebhookSettings {
            token: Some(SecretString::from("t")),
            allowed_ips: allowed.iter().map(|s| s.to_string()).collect(),
            trusted_proxies: proxies.iter().map(|s| s.to_string()).collect(),
            retention_days: 30.0,
        })
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn ranges_match_by_prefix() {
        assert!(contains(parse_ip_range("10.0.0.0/8").unwrap(), ip("10.200.1.1")));
        assert!(!contains(parse_ip_range("10.0.0.0/8").unwrap(), ip("11.0.0.1")));
        assert!(contains(parse_ip_range("13.203.39.153").unwrap(), ip("13.203.39.153")));
        assert!(contains(parse_ip_range("::1").unwrap(), ip("::1")));
        assert!(!contains(parse_ip_range("::1").unwrap(), ip("127.0.0.1")));
    }

    #[test]
    fn forwarded_addresses_are_believed_only_from_trusted_proxies() {
        let g = guard(&[], &["10.0.0.0/8"]);
        assert_eq!(
            g.client_ip(Some(ip("10.0.0.5")), Some("13.203.39.153, 10.0.0.7")),
            Some(ip("13.203.39.153"))
        );
        assert_eq!(
            g.client_ip(Some(ip("8.8.8.8")), Some("13.203.39.153")),
            Some(ip("8.8.8.8")),
            "untrusted peer"
        );
        assert_eq!(g.client_ip(Some(ip("10.0.0.5")), None), Some(ip("10.0.0.5")));
        assert_eq!(
            g.client_ip(Some(ip("10.0.0.5")), Some("1.2.3.4, 9.9.9.9")),
            Some(ip("9.9.9.9")),
            "right-most untrusted"
        );
    }

    #[test]
    fn the_word_bolna_admits_bolnas_published_addresses_only() {
        let g = guard(&["bolna"], &[]);
        let admitted = |address: &str| g.allowed.iter().any(|range| contains(*range, ip(address)));
        for address in ["13.203.39.153", "13.126.9.249", "13.202.133.53"] {
            assert!(admitted(address), "{address}");
        }
        for address in ["13.203.39.154", "13.126.9.0", "127.0.0.1", "::1"] {
            assert!(!admitted(address), "{address}");
        }
        assert_eq!(g.allowed.len(), 3);
        assert!(parse_allowed_source(" Bolna ").is_ok());
        assert!(parse_allowed_source("bolna.ai").is_err());
    }

    #[test]
    fn query_tokens_are_percent_decoded() {
        assert_eq!(token_from_query("a=1&token=s%2Fx%3D"), Some("s/x=".to_owned()));
        assert_eq!(token_from_query("tokens=1"), None);
    }
}
