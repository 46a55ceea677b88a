//! Source address checks: which client sent a request, and whether it may.
//!
//! `X-Forwarded-For` is believed only when the direct peer is a configured trusted proxy, and
//! then only up to the first address that is not itself a trusted proxy: everything to the left
//! of that is whatever the client chose to write. IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`,
//! as dual-stack sockets report IPv4 peers) are treated as the IPv4 address they carry.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

/// Allow-list preset name that expands to [`TRADINGVIEW_IPS`].
pub const TRADINGVIEW_PRESET: &str = "tradingview";

/// TradingView's published webhook sender addresses.
pub const TRADINGVIEW_IPS: [&str; 4] = [
    "52.89.214.238",
    "34.212.75.30",
    "54.218.53.128",
    "52.32.178.7",
];

/// An allow-list entry (`allow_ips`, `trusted_proxies`) that is not an address; the caller adds the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllowListError {
    /// Entry number `position` (counted from 1) is blank.
    #[error("allow-list entry {position} is empty: use an IP address, a CIDR block or \"{TRADINGVIEW_PRESET}\"")]
    EmptyEntry { position: usize },
    /// The entry (trimmed) is neither an address, a CIDR block nor the preset.
    #[error(
        "allow-list entry \"{entry}\" is not an IP address, a CIDR block \
         (e.g. 52.89.214.238 or 10.0.0.0/8) or \"{TRADINGVIEW_PRESET}\""
    )]
    NotAnAddress { entry: String },
}

/// Parses allow-list entries: an IP address, a CIDR block, or the preset `tradingview`
/// (case-insensitive). Host bits of a CIDR are cleared (`10.0.0.1/8` means `10.0.0.0/8`).
/// Errors name the offending entry.
pub fn parse_allow_list(entries: &[String]) -> Result<Vec<IpNet>, AllowListError> {
    let mut nets = Vec::with_capacity(entries.len());
    for (index, raw) in entries.iter().enumerate() {
        let entry = raw.trim();
        if entry.is_empty() {
            return Err(AllowListError::EmptyEntry {
                position: index + 1,
            });
        }
        if entry.eq_ignore_ascii_case(TRADINGVIEW_PRESET) {
            nets.extend(TRADINGVIEW_IPS.iter().map(|ip| {
                IpNet::from(
                    ip.parse::<IpAddr>()
                        .expect("TRADINGVIEW_IPS are valid addresses"),
                )
            }));
            continue;
        }
        nets.push(
            parse_net(entry).ok_or_else(|| AllowListError::NotAnAddress {
                entry: entry.to_string(),
            })?,
        );
    }
    Ok(nets)
}

fn parse_net(entry: &str) -> Option<IpNet> {
    if entry.contains('/') {
        let net: IpNet = entry.parse().ok()?;
        let net = match net.addr().to_canonical() {
            // `::ffff:a.b.c.d/n` with n >= 96 is an IPv4 block in disguise.
            IpAddr::V4(v4) if net.addr().is_ipv6() && net.prefix_len() >= 96 => {
                IpNet::new(IpAddr::V4(v4), net.prefix_len() - 96).ok()?
            }
            _ => net,
        };
        Some(net.trunc())
    } else {
        let ip: IpAddr = entry.parse().ok()?;
        Some(IpNet::from(ip.to_canonical()))
    }
}

fn is_trusted(ip: IpAddr, trusted_proxies: &[IpNet]) -> bool {
    trusted_proxies.iter().any(|net| net.contains(&ip))
}

/// One `X-Forwarded-For` element: a bare address, or (as some proxies write it) with a port.
fn parse_forwarded(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry
        .parse::<IpAddr>()
        .or_else(|_| entry.parse::<SocketAddr>().map(|s| s.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

/// The address of the client that sent the request.
///
/// `x_forwarded_for` is the header value (several headers joined with `,`). It is consulted only
/// when `peer` is in `trusted_proxies`; the list is walked from the right, skipping trusted
/// proxies, and the first untrusted address is returned. An unparsable element stops the walk and
/// the last good address (at worst the peer) is returned.
pub fn client_ip(peer: IpAddr, x_forwarded_for: Option<&str>, trusted_proxies: &[IpNet]) -> IpAddr {
    let peer = peer.to_canonical();
    let Some(xff) = x_forwarded_for else {
        return peer;
    };
    if !is_trusted(peer, trusted_proxies) {
        return peer;
    }
    let mut last_good = peer;
    for element in xff.rsplit(',') {
        let Some(ip) = parse_forwarded(element) else {
            return last_good;
        };
        if !is_trusted(ip, trusted_proxies) {
            return ip;
        }
        last_good = ip;
    }
    last_good
}

/// Whether `ip` may send alerts. An empty allow-list allows everyone.
pub fn is_allowed(ip: IpAddr, allow: &[IpNet]) -> bool {
    allow.is_empty() || is_trusted(ip.to_canonical(), allow)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn nets(entries: &[&str]) -> Vec<IpNet> {
        parse_allow_list(&entries.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn allow_list_accepts_ips_cidrs_and_preset() {
        let list = nets(&[
            "10.0.0.0/8",
            " 192.168.1.7 ",
            "2001:db8::/32",
            "::1",
            "TradingView",
        ]);
        assert_eq!(list.len(), 8);
        assert_eq!(list[0], "10.0.0.0/8".parse::<IpNet>().unwrap());
        assert_eq!(list[1], "192.168.1.7/32".parse::<IpNet>().unwrap());
        assert_eq!(list[3], "::1/128".parse::<IpNet>().unwrap());
        for (net, addr) in list[4..].iter().zip(TRADINGVIEW_IPS) {
            assert_eq!(*net, IpNet::from(ip(addr)));
        }
    }

    #[test]
    fn allow_list_normalises_entries() {
        let list = nets(&["10.1.2.3/8", "::ffff:1.2.3.4", "::ffff:10.0.0.0/104"]);
        assert_eq!(list[0], "10.0.0.0/8".parse::<IpNet>().unwrap());
        assert_eq!(list[1], "1.2.3.4/32".parse::<IpNet>().unwrap());
        assert_eq!(list[2], "10.0.0.0/8".parse::<IpNet>().unwrap());
    }

    #[test]
    fn allow_list_errors_name_the_entry() {
        for bad in [
            "10.0.0.0/33",
            "not-an-ip",
            "1.2.3",
            "tradingview.com",
            "1.2.3.4:80",
        ] {
            let err = parse_allow_list(&["1.2.3.4".to_string(), bad.to_string()]).unwrap_err();
            assert_eq!(
                err,
                AllowListError::NotAnAddress {
                    entry: bad.to_string()
                }
            );
            assert!(err.to_string().contains(bad), "{err}");
        }
        let err = parse_allow_list(&["1.2.3.4".to_string(), "  ".to_string()]).unwrap_err();
        assert_eq!(err, AllowListError::EmptyEntry { position: 2 });
        assert_eq!(
            err.to_string(),
            "allow-list entry 2 is empty: use an IP address, a CIDR block or \"tradingview\""
        );
        let err = parse_allow_list(&[" not-an-ip ".to_string()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "allow-list entry \"not-an-ip\" is not an IP address, a CIDR block (e.g. 52.89.214.238 or 10.0.0.0/8) or \"tradingview\""
        );
        assert_eq!(parse_allow_list(&[]).unwrap(), Vec::<IpNet>::new());
    }

    #[test]
    fn empty_allow_list_allows_all() {
        assert!(is_allowed(ip("203.0.113.9"), &[]));
        assert!(is_allowed(ip("2001:db8::1"), &[]));
    }

    #[test]
    fn allow_list_membership() {
        let list = nets(&["tradingview", "10.0.0.0/8"]);
        assert!(is_allowed(ip("52.89.214.238"), &list));
        assert!(is_allowed(ip("52.32.178.7"), &list));
        assert!(is_allowed(ip("10.200.1.1"), &list));
        assert!(!is_allowed(ip("52.89.214.239"), &list));
        assert!(!is_allowed(ip("11.0.0.1"), &list));
        assert!(!is_allowed(ip("2001:db8::1"), &list));
        // A dual-stack socket reports the TradingView address as IPv4-mapped IPv6.
        assert!(is_allowed(ip("::ffff:52.89.214.238"), &list));
    }

    #[test]
    fn xff_ignored_without_trusted_proxies() {
        let peer = ip("198.51.100.1");
        assert_eq!(client_ip(peer, Some("52.89.214.238"), &[]), peer);
        assert_eq!(client_ip(peer, None, &[]), peer);
    }

    #[test]
    fn xff_ignored_when_peer_is_not_trusted() {
        let trusted = nets(&["10.0.0.0/8"]);
        let peer = ip("198.51.100.1");
        assert_eq!(client_ip(peer, Some("52.89.214.238"), &trusted), peer);
    }

    #[test]
    fn xff_from_trusted_proxy_gives_rightmost_untrusted() {
        let trusted = nets(&["10.0.0.0/8", "127.0.0.1"]);
        let peer = ip("10.0.0.2");
        // The client forged the leftmost entry; the proxy appended the real address.
        assert_eq!(
            client_ip(peer, Some("1.1.1.1, 52.89.214.238"), &trusted),
            ip("52.89.214.238")
        );
        // Chains of trusted proxies are skipped.
        assert_eq!(
            client_ip(
                peer,
                Some("1.1.1.1, 52.89.214.238, 10.0.0.9,127.0.0.1"),
                &trusted
            ),
            ip("52.89.214.238")
        );
        assert_eq!(client_ip(peer, None, &trusted), peer);
    }

    #[test]
    fn xff_unparsable_entry_stops_the_walk() {
        let trusted = nets(&["10.0.0.0/8"]);
        let peer = ip("10.0.0.2");
        assert_eq!(client_ip(peer, Some("1.1.1.1, garbage"), &trusted), peer);
        assert_eq!(client_ip(peer, Some(""), &trusted), peer);
        assert_eq!(
            client_ip(peer, Some("1.1.1.1, unknown, 10.0.0.7"), &trusted),
            ip("10.0.0.7")
        );
    }

    #[test]
    fn xff_all_trusted_returns_leftmost() {
        let trusted = nets(&["10.0.0.0/8"]);
        assert_eq!(
            client_ip(ip("10.0.0.2"), Some("10.0.0.5, 10.0.0.6"), &trusted),
            ip("10.0.0.5")
        );
    }

    #[test]
    fn xff_entries_with_ports_and_ipv6() {
        let trusted = nets(&["10.0.0.0/8"]);
        let peer = ip("10.0.0.2");
        assert_eq!(
            client_ip(peer, Some("52.89.214.238:4711"), &trusted),
            ip("52.89.214.238")
        );
        assert_eq!(
            client_ip(peer, Some("[2001:db8::5]:443"), &trusted),
            ip("2001:db8::5")
        );
        assert_eq!(
            client_ip(peer, Some("2001:db8::6"), &trusted),
            ip("2001:db8::6")
        );
    }

    #[test]
    fn ipv4_mapped_peers_are_ipv4() {
        let trusted = nets(&["10.0.0.0/8"]);
        let mapped_proxy = ip("::ffff:10.0.0.2");
        assert_eq!(
            client_ip(mapped_proxy, Some("52.89.214.238"), &trusted),
            ip("52.89.214.238")
        );
        assert_eq!(
            client_ip(ip("::ffff:203.0.113.5"), None, &[]),
            ip("203.0.113.5")
        );
        assert_eq!(
            client_ip(mapped_proxy, Some("::ffff:52.89.214.238"), &trusted),
            ip("52.89.214.238")
        );
    }
}
