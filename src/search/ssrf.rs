//! Which addresses the page reader may connect to, and a DNS resolver that enforces it.
//!
//! The check sits in the resolver, not before the request: the addresses that pass
//! the check are the only ones the connector ever sees, so a name that resolves to
//! a public address for the check and to 127.0.0.1 for the connection (DNS
//! rebinding) has no second lookup to exploit.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// What kind of address an IP is, as far as SSRF is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    /// Routable on the internet.
    Public,
    /// 127.0.0.0/8, ::1.
    Loopback,
    /// 10/8, 172.16/12, 192.168/16, and the deprecated fec0::/10.
    Private,
    /// fc00::/7.
    UniqueLocal,
    /// 169.254/16, fe80::/10.
    LinkLocal,
    /// 100.64/10, carrier-grade NAT.
    SharedCgnat,
    /// 0.0.0.0, :: (connecting to them reaches the local host).
    Unspecified,
    /// 224/4, ff00::/8.
    Multicast,
    /// 255.255.255.255.
    Broadcast,
    /// Documentation, benchmarking, "this network" and other reserved ranges.
    Reserved,
    /// Cloud instance-metadata endpoints, which hand out credentials.
    CloudMetadata,
}

impl AddressClass {
    /// Intranet ranges a deployment may legitimately want to read from.
    fn is_private_network(self) -> bool {
        matches!(
            self,
            AddressClass::Loopback
                | AddressClass::Private
                | AddressClass::UniqueLocal
                | AddressClass::LinkLocal
                | AddressClass::SharedCgnat
        )
    }
}

impl fmt::Display for AddressClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            AddressClass::Public => "public",
            AddressClass::Loopback => "loopback",
            AddressClass::Private => "private",
            AddressClass::UniqueLocal => "unique-local",
            AddressClass::LinkLocal => "link-local",
            AddressClass::SharedCgnat => "shared (CGNAT)",
            AddressClass::Unspecified => "unspecified",
            AddressClass::Multicast => "multicast",
            AddressClass::Broadcast => "broadcast",
            AddressClass::Reserved => "reserved",
            AddressClass::CloudMetadata => "cloud metadata",
        };
        f.write_str(text)
    }
}

/// Well-known instance-metadata addresses (AWS/GCP/Azure/OpenStack, AWS IPv6,
/// Alibaba, Azure wire server).
const METADATA: [IpAddr; 4] = [
    IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254)),
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254)),
    IpAddr::V4(Ipv4Addr::new(100, 100, 100, 200)),
    IpAddr::V4(Ipv4Addr::new(168, 63, 129, 16)),
];

/// Classifies `ip`. IPv6 forms that embed an IPv4 address (mapped, NAT64, 6to4)
/// are judged by the embedded address, so `::ffff:127.0.0.1` is loopback.
pub fn classify(ip: IpAddr) -> AddressClass {
    if METADATA.contains(&ip) {
        return AddressClass::CloudMetadata;
    }
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    let [a, b, c, _] = ip.octets();
    if ip.is_unspecified() {
        AddressClass::Unspecified
    } else if ip.is_loopback() {
        AddressClass::Loopback
    } else if ip.is_private() {
        AddressClass::Private
    } else if ip.is_link_local() {
        AddressClass::LinkLocal
    } else if a == 100 && (64..128).contains(&b) {
        AddressClass::SharedCgnat
    } else if ip.is_broadcast() {
        AddressClass::Broadcast
    } else if ip.is_multicast() {
        AddressClass::Multicast
    } else if a == 0
        || a >= 240
        || (a == 192 && b == 0 && (c == 0 || c == 2))
        || (a == 198 && (b & 0xfe) == 18)
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
    {
        AddressClass::Reserved
    } else {
        AddressClass::Public
    }
}

fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    let seg = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify(IpAddr::V4(v4));
    }
    // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) reach the IPv4 address they embed.
    let embedded = if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        Some(Ipv4Addr::from(
            (u32::from(seg[6]) << 16) | u32::from(seg[7]),
        ))
    } else if seg[0] == 0x2002 {
        Some(Ipv4Addr::from(
            (u32::from(seg[1]) << 16) | u32::from(seg[2]),
        ))
    } else {
        None
    };
    if let Some(v4) = embedded {
        return classify(IpAddr::V4(v4));
    }
    if ip.is_unspecified() {
        AddressClass::Unspecified
    } else if ip.is_loopback() {
        AddressClass::Loopback
    } else if ip.is_multicast() {
        AddressClass::Multicast
    } else if (seg[0] & 0xffc0) == 0xfe80 {
        AddressClass::LinkLocal
    } else if (seg[0] & 0xffc0) == 0xfec0 {
        AddressClass::Private
    } else if (seg[0] & 0xfe00) == 0xfc00 {
        AddressClass::UniqueLocal
    } else if seg[..6] == [0; 6]
        || (seg[0] == 0x2001 && seg[1] == 0x0db8)
        || seg[..4] == [0x100, 0, 0, 0]
    {
        // IPv4-compatible (deprecated), documentation, discard-only.
        AddressClass::Reserved
    } else {
        AddressClass::Public
    }
}

/// Which addresses may be connected to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    /// Also allow loopback, private, unique-local, link-local and CGNAT ranges.
    /// Metadata, unspecified, multicast and reserved addresses stay refused: no
    /// intranet page lives there.
    pub allow_private: bool,
    /// Individual addresses allowed whatever their class.
    pub allowed: Vec<IpAddr>,
}

/// A connection refused by the [`AddressPolicy`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refusing to connect to {host}: {addr} is a {class} address")]
pub struct BlockedAddress {
    /// Host as written in the URL.
    pub host: String,
    /// The refused address (the first one, when a name resolved to several).
    pub addr: IpAddr,
    /// Why it was refused.
    pub class: AddressClass,
}

impl AddressPolicy {
    /// `Ok` if `addr` (reached as `host`) may be connected to.
    pub fn check(&self, host: &str, addr: IpAddr) -> Result<(), BlockedAddress> {
        let class = classify(addr);
        let allowed = class == AddressClass::Public
            || (self.allow_private && class.is_private_network())
            || self.allowed.contains(&addr)
            || self.allowed.iter().any(|a| Some(*a) == unmapped(addr));
        if allowed {
            Ok(())
        } else {
            Err(BlockedAddress {
                host: host.to_string(),
                addr,
                class,
            })
        }
    }
}

fn unmapped(addr: IpAddr) -> Option<IpAddr> {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4),
        IpAddr::V4(_) => None,
    }
}

/// Resolves names with the system resolver and drops every address the policy
/// refuses; fails with [`BlockedAddress`] when none is left.
#[derive(Debug, Clone)]
pub(crate) struct GuardedResolver {
    policy: Arc<AddressPolicy>,
}

impl GuardedResolver {
    pub(crate) fn new(policy: Arc<AddressPolicy>) -> Self {
        GuardedResolver { policy }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = Arc::clone(&self.policy);
        let host = name.as_str().to_string();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refused = None;
            let mut allowed = Vec::with_capacity(resolved.len());
            for addr in resolved {
                match policy.check(&host, addr.ip()) {
                    Ok(()) => allowed.push(addr),
                    Err(blocked) => {
                        refused.get_or_insert(blocked);
                    }
                }
            }
            if allowed.is_empty() {
                let err: Box<dyn std::error::Error + Send + Sync> = match refused {
                    Some(blocked) => Box::new(blocked),
                    None => format!("{host} has no addresses").into(),
                };
                return Err(err);
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(s: &str) -> AddressClass {
        classify(s.parse().unwrap())
    }

    #[test]
    fn classifies_the_dangerous_ranges() {
        use AddressClass::*;
        let cases = [
            ("127.0.0.1", Loopback),
            ("127.8.9.10", Loopback),
            ("10.0.0.1", Private),
            ("172.16.0.1", Private),
            ("172.31.255.255", Private),
            ("192.168.1.1", Private),
            ("169.254.169.254", CloudMetadata),
            ("169.254.1.1", LinkLocal),
            ("100.64.0.1", SharedCgnat),
            ("100.127.255.255", SharedCgnat),
            ("0.0.0.0", Unspecified),
            ("0.1.2.3", Reserved),
            ("224.0.0.1", Multicast),
            ("255.255.255.255", Broadcast),
            ("240.0.0.1", Reserved),
            ("198.18.0.1", Reserved),
            ("::1", Loopback),
            ("::", Unspecified),
            ("fe80::1", LinkLocal),
            ("fc00::1", UniqueLocal),
            ("fd12:3456::1", UniqueLocal),
            ("fd00:ec2::254", CloudMetadata),
            ("ff02::1", Multicast),
            ("::ffff:127.0.0.1", Loopback),
            ("::ffff:169.254.169.254", CloudMetadata),
            ("64:ff9b::a00:1", Private),
            ("2002:7f00:1::", Loopback),
            ("2001:db8::1", Reserved),
            ("8.8.8.8", Public),
            ("172.32.0.1", Public),
            ("100.128.0.1", Public),
            ("2606:4700::1111", Public),
        ];
        for (ip, expected) in cases {
            assert_eq!(class(ip), expected, "{ip}");
        }
    }

    #[test]
    fn policy_honours_allow_private_and_explicit_addresses() {
        let strict = AddressPolicy::default();
        let lax = AddressPolicy {
            allow_private: true,
            allowed: vec![],
        };
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(strict.check("h", ip("127.0.0.1")).is_err());
        assert!(strict.check("h", ip("93.184.216.34")).is_ok());
        assert!(lax.check("h", ip("127.0.0.1")).is_ok());
        assert!(lax.check("h", ip("10.1.2.3")).is_ok());
        assert!(lax.check("h", ip("169.254.169.254")).is_err());
        assert!(lax.check("h", ip("0.0.0.0")).is_err());
        let pinned = AddressPolicy {
            allow_private: false,
            allowed: vec![ip("127.0.0.1")],
        };
        assert!(pinned.check("h", ip("127.0.0.1")).is_ok());
        assert!(pinned.check("h", ip("::ffff:127.0.0.1")).is_ok());
        assert!(pinned.check("h", ip("127.0.0.2")).is_err());
        let err = strict.check("example", ip("10.0.0.1")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "refusing to connect to example: 10.0.0.1 is a private address"
        );
    }
}
