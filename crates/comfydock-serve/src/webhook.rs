//! Webhooks: the finished job posted to the URL its request named. The URL comes from whoever
//! may submit jobs, so by default it must lead to a public address: loopback, private,
//! link-local and other internal addresses are refused when the job is submitted (literal
//! addresses and names that resolve to them) and again when the hook is sent, against the very
//! address the request then connects to (a name cannot be re-pointed in between).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use uuid::Uuid;

use crate::store::JobStore;

/// Which webhook targets are allowed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WebhookPolicy {
    /// Also loopback, private and link-local addresses (an operator's own network).
    pub allow_private: bool,
}

impl WebhookPolicy {
    /// The addresses `url` may be posted to: every address its host resolves to, all public
    /// unless private ones are allowed. `Err` says why not, for a 422 or a log line.
    pub async fn check(&self, url: &str) -> Result<Vec<SocketAddr>, String> {
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err("must be an http:// or https:// URL".into());
        }
        let host = parsed.host_str().ok_or("has no host")?.to_owned();
        let port = parsed.port_or_known_default().unwrap_or(443);
        let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
        let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((host.as_str(), port))
                .await
                .map_err(|e| format!("its host `{host}` does not resolve: {e}"))?
                .collect(),
        };
        if addrs.is_empty() {
            return Err(format!("its host `{host}` does not resolve"));
        }
        if !self.allow_private
            && let Some(internal) = addrs.iter().find(|a| !is_public(a.ip()))
        {
            return Err(format!(
                "leads to the internal address {} (serve posts webhooks to public addresses only; start it with --allow-private-webhooks to allow its own network)",
                internal.ip()
            ));
        }
        Ok(addrs)
    }
}

/// Whether `ip` is an address on the public internet (not loopback, private, link-local,
/// shared, unspecified, multicast, broadcast or documentation space).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (b == 18 || b == 19)))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || first == 0x2001 && v6.segments()[1] == 0x0db8)
        }
    }
}

/// Post the finished job to `url` (3 tries, 1 s apart), connecting only to an address the
/// policy allows at this moment.
pub async fn send(store: &dyn JobStore, policy: WebhookPolicy, job_id: Uuid, url: &str) {
    let Ok(Some(job)) = store.get(job_id).await else {
        return;
    };
    let addrs = match policy.check(url).await {
        Ok(addrs) => addrs,
        Err(reason) => {
            tracing::warn!(%job_id, url, reason, "webhook not sent");
            return;
        }
    };
    let host = reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    let Ok(client) = reqwest::Client::builder()
        .resolve_to_addrs(&host, &addrs)
        .redirect(reqwest::redirect::Policy::none())
        .build()
    else {
        return;
    };
    let body = crate::job_view::job_json(&job);
    for _ in 0..3 {
        let sent = client
            .post(url)
            .timeout(Duration::from_secs(10))
            .json(&body)
            .send()
            .await;
        if sent.is_ok_and(|r| r.status().is_success()) {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    tracing::warn!(%job_id, url, "webhook failed 3 times");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_not_public() {
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_public(internal.parse().unwrap()), "{internal}");
        }
        for public in ["93.184.216.34", "8.8.8.8", "2606:4700::1111"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[tokio::test]
    async fn internal_targets_are_refused_unless_allowed() {
        let strict = WebhookPolicy::default();
        for url in [
            "http://127.0.0.1:9/hook",
            "http://localhost:9/hook",
            "http://[::1]/hook",
            "http://169.254.169.254/latest/meta-data",
        ] {
            let err = strict.check(url).await.unwrap_err();
            assert!(err.contains("internal address"), "{url}: {err}");
        }
        assert!(strict.check("ftp://example.org/x").await.is_err());
        let open = WebhookPolicy { allow_private: true };
        assert_eq!(
            open.check("http://127.0.0.1:9/hook").await.unwrap(),
            ["127.0.0.1:9".parse::<SocketAddr>().unwrap()]
        );
    }
}
