//! The relay's face to everyone who has not knocked (`vigil_core::wire::knock`): the answers of
//! a small, ordinary static web server.
//!
//! A scanner, a browser, or a censor's probe replaying what it saw gets plain HTTP/1.1: `/` is
//! a page (the operator's, or a short blank one), other paths are 404, other methods 405,
//! garbage 400 with the connection closed, like common servers. The connection then stays open
//! for further requests until it has been idle a while: no fixed-length read followed by a
//! close, which is how some circumvention servers have been recognised. A failed knock is
//! answered exactly like any other POST to its path.

use anyhow::{Context, Result};
use bytes::Bytes;
use std::path::Path;
use vigil_core::wire::knock::Head;

/// Largest front page served (an ordinary page; bounded so a mistaken path cannot make the
/// relay hold a huge file).
pub const MAX_FRONT_PAGE: usize = 256 * 1024;

/// Largest request body an ordinary request may carry; it is read and thrown away. Larger
/// ones get 413 and the connection is closed, as many servers do.
pub(super) const MAX_DISCARDED_BODY: u64 = 64 * 1024;

const DEFAULT_PAGE: &str = "<!DOCTYPE html>\n<html>\n<head><meta charset=\"utf-8\"><title></title></head>\n<body></body>\n</html>\n";

/// The page served at `/`.
pub(crate) struct FrontPage {
    html: Bytes,
}

impl FrontPage {
    /// The operator's page from `path`, or the default blank page.
    pub(crate) fn load(path: Option<&Path>) -> Result<Self> {
        let html = match path {
            None => Bytes::from_static(DEFAULT_PAGE.as_bytes()),
            Some(p) => {
                let len = std::fs::metadata(p)
                    .with_context(|| format!("cannot read the front page {}", p.display()))?
                    .len();
                if len > MAX_FRONT_PAGE as u64 {
                    anyhow::bail!(
                        "the front page {} is {len} bytes; at most {MAX_FRONT_PAGE} are served",
                        p.display()
                    );
                }
                Bytes::from(
                    std::fs::read(p)
                        .with_context(|| format!("cannot read the front page {}", p.display()))?,
                )
            }
        };
        Ok(Self { html })
    }
}

/// What to send for one request head that is not a good knock, and whether to close after.
pub(super) fn answer(page: &FrontPage, head: &Head<'_>, now: u64) -> (Vec<u8>, bool) {
    let close = head.wants_close();
    let head_only = head.method == "HEAD";
    let path = head.target.split(['?', '#']).next().unwrap_or("");
    let (status, body, html): (&str, &[u8], bool) = match head.method {
        "GET" | "HEAD" if path == "/" || path == "/index.html" => ("200 OK", &page.html, true),
        "GET" | "HEAD" => ("404 Not Found", b"404 Not Found\n", false),
        _ if path == "/" || path == "/index.html" => {
            ("405 Method Not Allowed", b"405 Method Not Allowed\n", false)
        }
        _ => ("404 Not Found", b"404 Not Found\n", false),
    };
    let mut extra = String::new();
    if status.starts_with("405") {
        extra.push_str("Allow: GET, HEAD\r\n");
    }
    (
        response(status, body, html, head_only, close, &extra, now),
        close,
    )
}

/// 400 for bytes that are not an HTTP request; the connection is closed after it.
pub(super) fn bad_request(now: u64) -> Vec<u8> {
    response(
        "400 Bad Request",
        b"400 Bad Request\n",
        false,
        false,
        true,
        "",
        now,
    )
}

/// 413 for a body larger than [`MAX_DISCARDED_BODY`]; the connection is closed after it.
pub(super) fn too_large(now: u64) -> Vec<u8> {
    response(
        "413 Content Too Large",
        b"413 Content Too Large\n",
        false,
        false,
        true,
        "",
        now,
    )
}

fn response(
    status: &str,
    body: &[u8],
    html: bool,
    head_only: bool,
    close: bool,
    extra: &str,
    now: u64,
) -> Vec<u8> {
    let ctype = if html {
        "text/html; charset=utf-8"
    } else {
        "text/plain; charset=utf-8"
    };
    let mut out = format!(
        "HTTP/1.1 {status}\r\nDate: {}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n{extra}{}\r\n",
        http_date(now),
        body.len(),
        if close { "Connection: close\r\n" } else { "" },
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(body);
    }
    out
}

/// An HTTP date (RFC 9110 IMF-fixdate), e.g. `Fri, 04 Dec 2026 10:11:06 GMT`.
fn http_date(secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let c = vigil_core::civil::Civil::from_unix(secs);
    format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
        DAYS[((secs / 86_400) % 7) as usize],
        c.day,
        MONTHS[(c.month.clamp(1, 12) - 1) as usize],
        c.year,
        c.hour,
        c.minute,
        c.second
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_core::wire::knock::parse_head;

    fn text(b: &[u8]) -> String {
        String::from_utf8_lossy(b).into_owned()
    }

    #[test]
    fn dates_are_http_dates() {
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(1_796_378_400), "Fri, 04 Dec 2026 10:00:00 GMT");
    }

    #[test]
    fn ordinary_requests_get_ordinary_answers() {
        let page = FrontPage::load(None).unwrap();
        let get = parse_head(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            .unwrap()
            .unwrap();
        let (r, close) = answer(&page, &get, 0);
        assert!(!close);
        let r = text(&r);
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
        assert!(r.ends_with(DEFAULT_PAGE), "{r}");
        assert!(!r.to_lowercase().contains("vigil"));
        let head = parse_head(b"HEAD /x HTTP/1.0\r\n\r\n").unwrap().unwrap();
        let (r, close) = answer(&page, &head, 0);
        assert!(close, "HTTP/1.0 without keep-alive closes");
        assert!(text(&r).starts_with("HTTP/1.1 404 Not Found\r\n"));
        assert!(text(&r).ends_with("\r\n\r\n"), "no body for HEAD");
        let post = parse_head(b"POST / HTTP/1.1\r\n\r\n").unwrap().unwrap();
        assert!(text(&answer(&page, &post, 0).0).contains("405 Method Not Allowed"));
        assert!(text(&bad_request(0)).contains("Connection: close"));
    }
}
