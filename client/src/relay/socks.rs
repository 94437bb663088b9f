//! A SOCKS5 client (RFC 1928, with RFC 1929 username/password), CONNECT only: enough to reach a
//! relay through Tor or Orbot. The relay's host name goes to the proxy as a name (the `socks5h`
//! behaviour), so no DNS query for it leaves this machine.

use super::transport::Proxy;
use rand::Rng;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Why the proxy did not connect us.
#[derive(Debug, thiserror::Error)]
pub enum SocksError {
    /// The proxy itself cannot be reached.
    #[error("the proxy at {proxy} is not answering ({reason})")]
    ProxyDown {
        /// host:port of the proxy.
        proxy: String,
        /// What failed.
        reason: String,
    },
    /// The proxy answered, but not as a SOCKS5 proxy, or refused us.
    #[error("the proxy at {proxy} {reason}")]
    Proxy {
        /// host:port of the proxy.
        proxy: String,
        /// What it said.
        reason: String,
    },
    /// The proxy could not reach the relay.
    #[error("the proxy could not reach the relay ({0})")]
    Target(&'static str),
}

/// Open a TCP connection to `host:port` through `proxy`, within `timeout`.
pub async fn connect(
    proxy: &Proxy,
    host: &str,
    port: u16,
    timeout: Duration,
) -> Result<TcpStream, SocksError> {
    match tokio::time::timeout(timeout, connect_unbounded(proxy, host, port)).await {
        Ok(r) => r,
        Err(_) => Err(SocksError::ProxyDown {
            proxy: proxy.to_string(),
            reason: format!("no answer within {} seconds", timeout.as_secs()),
        }),
    }
}

async fn connect_unbounded(proxy: &Proxy, host: &str, port: u16) -> Result<TcpStream, SocksError> {
    let down = |e: std::io::Error| SocksError::ProxyDown {
        proxy: proxy.to_string(),
        reason: e.to_string(),
    };
    let garbled = |what: &str| SocksError::Proxy {
        proxy: proxy.to_string(),
        reason: format!("does not speak SOCKS5 ({what})"),
    };
    let mut s = TcpStream::connect((proxy.host.as_str(), proxy.port))
        .await
        .map_err(down)?;
    let _ = s.set_nodelay(true);
    let io = |_: std::io::Error| garbled("the connection broke");
    // Offer "no authentication" and "username/password"; Tor picks the latter when offered and
    // gives each distinct pair its own circuit.
    s.write_all(&[5, 2, 0, 2]).await.map_err(io)?;
    let mut choice = [0u8; 2];
    s.read_exact(&mut choice).await.map_err(io)?;
    if choice[0] != 5 {
        return Err(garbled("bad version"));
    }
    match choice[1] {
        0 => {}
        2 => {
            let (user, pass) = proxy.auth.clone().unwrap_or_else(|| {
                let mut rng = rand::thread_rng();
                let hex = |rng: &mut rand::rngs::ThreadRng| hex::encode(rng.gen::<[u8; 12]>());
                (hex(&mut rng), hex(&mut rng))
            });
            let mut m = vec![1, user.len() as u8];
            m.extend_from_slice(user.as_bytes());
            m.push(pass.len() as u8);
            m.extend_from_slice(pass.as_bytes());
            s.write_all(&m).await.map_err(io)?;
            let mut st = [0u8; 2];
            s.read_exact(&mut st).await.map_err(io)?;
            if st[1] != 0 {
                return Err(SocksError::Proxy {
                    proxy: proxy.to_string(),
                    reason: "refused the username and password".into(),
                });
            }
        }
        _ => {
            return Err(SocksError::Proxy {
                proxy: proxy.to_string(),
                reason: "accepts none of our authentication methods".into(),
            })
        }
    }
    let mut req = vec![5, 1, 0];
    match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(a)) => {
            req.push(1);
            req.extend_from_slice(&a.octets());
        }
        Ok(std::net::IpAddr::V6(a)) => {
            req.push(4);
            req.extend_from_slice(&a.octets());
        }
        Err(_) => {
            let name = host.as_bytes();
            if name.is_empty() || name.len() > 255 {
                return Err(SocksError::Target("the relay's host name is too long"));
            }
            req.push(3);
            req.push(name.len() as u8);
            req.extend_from_slice(name);
        }
    }
    req.extend_from_slice(&port.to_be_bytes());
    s.write_all(&req).await.map_err(io)?;
    let mut head = [0u8; 4];
    s.read_exact(&mut head).await.map_err(io)?;
    if head[0] != 5 {
        return Err(garbled("bad reply"));
    }
    if head[1] != 0 {
        return Err(SocksError::Target(match head[1] {
            2 => "the proxy's rules do not allow it",
            3 => "network unreachable",
            4 => "host unreachable",
            5 => "connection refused",
            6 => "timed out",
            _ => "general failure",
        }));
    }
    // The bound address, which we do not need.
    let skip = match head[3] {
        1 => 4,
        4 => 16,
        3 => {
            let mut l = [0u8; 1];
            s.read_exact(&mut l).await.map_err(io)?;
            usize::from(l[0])
        }
        _ => return Err(garbled("bad address type")),
    };
    let mut rest = vec![0u8; skip + 2];
    s.read_exact(&mut rest).await.map_err(io)?;
    Ok(s)
}
