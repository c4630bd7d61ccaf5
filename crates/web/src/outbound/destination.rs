//! Where a delivery may go. An endpoint's URL must be `https://` (or `http://` with
//! `outbound_webhooks.allow_http`) and every address its host resolves to must be public, unless
//! `outbound_webhooks.allow_private_destinations`. Checked when an endpoint is created or changed,
//! and again at every attempt by the sender's resolver (DNS can change between the two).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// What the configuration allows.
#[derive(Debug, Clone, Copy)]
pub struct DestinationPolicy {
    pub allow_http: bool,
    pub allow_private: bool,
}

/// Why a destination is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DestinationError {
    #[error("must be an absolute http:// or https:// URL with a host, without user name or password, at most 2048 characters")]
    Malformed,
    #[error("must use https:// (http:// is refused by outbound_webhooks.allow_http)")]
    PlainHttp,
    #[error("{host} resolves to {address}, which is not a public address (outbound_webhooks.allow_private_destinations)")]
    NotPublic { host: String, address: IpAddr },
    #[error("{host} does not resolve: {reason}")]
    Unresolvable { host: String, reason: String },
}

/// The URL's scheme and host after the checks that need no DNS.
fn parse(url: &str, policy: DestinationPolicy) -> Result<reqwest::Url, DestinationError> {
    if url.len() > 2048 || url.contains('\0') {
        return Err(DestinationError::Malformed);
    }
    let parsed = reqwest::Url::parse(url).map_err(|_| DestinationError::Malformed)?;
    if !parsed.username().is_empty() || parsed.password().is_some() || parsed.host().is_none() {
        return Err(DestinationError::Malformed);
    }
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if policy.allow_http => Ok(parsed),
        "http" => Err(DestinationError::PlainHttp),
        _ => Err(DestinationError::Malformed),
    }
}

/// Checks a URL, resolving its host: the creation-time check. Where private destinations are
/// allowed there is nothing to resolve for (a name that does not resolve yet fails at delivery).
pub async fn check_destination(
    url: &str,
    policy: DestinationPolicy,
) -> Result<reqwest::Url, DestinationError> {
    let parsed = parse(url, policy)?;
    if policy.allow_private {
        return Ok(parsed);
    }
    let host = parsed.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']').to_owned();
    let port = parsed.port_or_known_default().unwrap_or(443);
    let addresses: Vec<IpAddr> = match host.parse::<IpAddr>() {
        Ok(address) => vec![address],
        Err(_) => tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|error| DestinationError::Unresolvable {
                host: host.clone(),
                reason: error.to_string(),
            })?
            .map(|address| address.ip())
            .collect(),
    };
    if !policy.allow_private {
        if let Some(address) = addresses.iter().find(|address| !is_public(**address)) {
            return Err(DestinationError::NotPublic { host, address: *address });
        }
    }
    Ok(parsed)
}

/// The send-time check of a URL whose host is an address literal (the resolver never sees those).
pub fn check_literal(url: &reqwest::Url, policy: DestinationPolicy) -> Result<(), DestinationError> {
    let host = url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
    match host.parse::<IpAddr>() {
        Ok(address) if !policy.allow_private && !is_public(address) => {
            Err(DestinationError::NotPublic { host: host.to_owned(), address })
        }
        _ => Ok(()),
    }
}

/// The sender's resolver: the system's, refusing names that resolve to a non-public address
/// unless allowed. The connection then goes to the very addresses checked.
#[derive(Debug, Clone, Copy)]
pub struct PublicOnlyResolver {
    pub allow_private: bool,
}

impl Resolve for PublicOnlyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if !allow_private {
                if let Some(address) = addresses.iter().find(|address| !is_public(address.ip())) {
                    let refused = DestinationError::NotPublic { host, address: address.ip() };
                    return Err(Box::new(refused) as Box<dyn std::error::Error + Send + Sync>);
                }
            }
            Ok(Box::new(addresses.into_iter()) as Addrs)
        })
    }
}

/// A globally routable unicast address: not loopback, private, shared (CGNAT), link-local,
/// unspecified, documentation, benchmarking, multicast, broadcast or reserved; an IPv4-mapped or
/// NAT64 IPv6 address is judged by its IPv4 address.
pub fn is_public(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(a: Ipv4Addr) -> bool {
    let [first, second, third, _] = a.octets();
    !(a.is_loopback()
        || a.is_private()
        || a.is_link_local()
        || a.is_unspecified()
        || a.is_broadcast()
        || a.is_documentation()
        || a.is_multicast()
        || first == 0
        || (first == 100 && (64..128).contains(&second))
        || (first == 192 && second == 0 && third == 0)
        || (first == 198 && (18..20).contains(&second))
        || first >= 240)
}

fn is_public_v6(a: Ipv6Addr) -> bool {
    if let Some(v4) = a.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let segments = a.segments();
    if segments[0] == 0x64 && segments[1] == 0xff9b && segments[2..6] == [0, 0, 0, 0] {
        let [.., high, low] = segments;
        return is_public_v4(Ipv4Addr::from((u32::from(high) << 16) | u32::from(low)));
    }
    !(a.is_loopback()
        || a.is_unspecified()
        || a.is_multicast()
        || (segments[0] & 0xfe00) == 0xfc00
        || (segments[0] & 0xffc0) == 0xfe80
        || (segments[0] == 0x2001 && segments[1] == 0x0db8)
        || segments[0] == 0x100 && segments[1..4] == [0, 0, 0])
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: DestinationPolicy = DestinationPolicy { allow_http: false, allow_private: false };

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "198.18.0.1",
            "192.0.2.1",
            "::1",
            "::",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "2001:db8::1",
            "ff02::1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "13.203.39.153"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[tokio::test]
    async fn urls_are_checked_before_any_request() {
        for (url, expected) in [
            ("http://example.com/hook", DestinationError::PlainHttp),
            ("ftp://example.com/hook", DestinationError::Malformed),
            ("https://user:pw@example.com/", DestinationError::Malformed),
            ("not a url", DestinationError::Malformed),
        ] {
            assert_eq!(check_destination(url, STRICT).await.unwrap_err(), expected, "{url}");
        }
        for url in
            ["https://127.0.0.1/", "https://[::1]:8443/", "https://localhost/", "https://169.254.169.254/"]
        {
            assert!(
                matches!(check_destination(url, STRICT).await, Err(DestinationError::NotPublic { .. })),
                "{url}"
            );
        }
        let open = DestinationPolicy { allow_http: true, allow_private: true };
        assert!(check_destination("http://127.0.0.1:9/hook", open).await.is_ok());
    }
}
