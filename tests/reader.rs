//! `PageReader`: SSRF guard, redirects, size cap and deadline, against a local server.
//!
//! Refusals must happen before any packet leaves: the private and metadata addresses
//! used here are never connected to, which is what the guard is for.

mod support;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use deepsearch_stream::search::ssrf::AddressClass;
use deepsearch_stream::search::{PageReader, ReaderError, ReaderOptions};
use support::{Reply, Request, TestServer};

const PAGE: &str = "<html><head><title>Local &amp; Test</title><script>evil()</script></head>\
                    <body><h1>Hello</h1><p>Reader <b>works</b>.</p></body></html>";

fn reader(opts: ReaderOptions) -> PageReader {
    PageReader::new(opts).unwrap()
}

fn strict() -> PageReader {
    reader(ReaderOptions::default())
}

fn permissive() -> PageReader {
    reader(ReaderOptions {
        allow_private: true,
        timeout: Duration::from_millis(500),
        ..ReaderOptions::default()
    })
}

/// Only 127.0.0.1 is trusted (where the test server lives); everything else private
/// stays refused, which is how redirects to private targets are exercised.
fn pinned_to_loopback() -> PageReader {
    reader(ReaderOptions {
        allowed_addrs: vec![IpAddr::from([127, 0, 0, 1])],
        ..ReaderOptions::default()
    })
}

fn assert_blocked(result: Result<impl std::fmt::Debug, ReaderError>, class: AddressClass) {
    match result {
        Err(ReaderError::Blocked(blocked)) => assert_eq!(blocked.class, class, "{blocked}"),
        other => panic!("expected Blocked({class}), got {other:?}"),
    }
}

#[tokio::test]
async fn refuses_internal_addresses_by_default() {
    let server = TestServer::start(|_: &Request| Reply::html(PAGE)).await;
    let port = server.addr.port();
    let reader = strict();
    assert_blocked(
        reader.fetch(&format!("http://127.0.0.1:{port}/")).await,
        AddressClass::Loopback,
    );
    assert_blocked(
        reader.fetch("http://10.0.0.1/").await,
        AddressClass::Private,
    );
    assert_blocked(
        reader
            .fetch("http://169.254.169.254/latest/meta-data/")
            .await,
        AddressClass::CloudMetadata,
    );
    assert_blocked(reader.fetch("http://[::1]/").await, AddressClass::Loopback);
    assert_blocked(
        reader.fetch("http://[::ffff:7f00:1]/").await,
        AddressClass::Loopback,
    );
    // Odd IPv4 spellings are normalised before the check.
    assert_blocked(
        reader.fetch(&format!("http://2130706433:{port}/")).await,
        AddressClass::Loopback,
    );
    // A name is checked on what it resolves to.
    assert_blocked(
        reader.fetch(&format!("http://localhost:{port}/")).await,
        AddressClass::Loopback,
    );
    assert!(
        server.requests().is_empty(),
        "a refused fetch reached the server"
    );
}

#[tokio::test]
async fn only_http_and_https() {
    let reader = permissive();
    for url in [
        "file:///etc/passwd",
        "ftp://example.com/",
        "gopher://127.0.0.1/",
    ] {
        match reader.fetch(url).await {
            Err(ReaderError::UnsupportedScheme(_)) => {}
            other => panic!("{url}: expected UnsupportedScheme, got {other:?}"),
        }
    }
    assert!(matches!(
        reader.fetch("not a url").await,
        Err(ReaderError::InvalidUrl { .. })
    ));
}

#[tokio::test]
async fn allow_private_reads_local_pages() {
    let server = TestServer::start(|req: &Request| match req.path.as_str() {
        "/page" => Reply::html(PAGE),
        "/plain" => Reply::new(200, "text/plain", "  just text  "),
        "/untyped" => Reply {
            headers: vec![],
            ..Reply::html("<p>sniffed</p>")
        },
        "/pdf" => Reply::new(200, "application/pdf", "%PDF-1.7"),
        "/missing" => Reply::new(404, "text/html", "nope"),
        _ => Reply::redirect("/page"),
    })
    .await;
    let reader = permissive();

    let page = reader.fetch(&server.url("/page")).await.unwrap();
    assert_eq!(page.title.as_deref(), Some("Local & Test"));
    assert_eq!(page.text, "# Hello\n\nReader works.");
    assert!(!page.truncated);
    assert_eq!(page.url, server.url("/page"));

    // Names resolve through the guard too; with allow_private, localhost is fine.
    let by_name = format!("http://localhost:{}/page", server.addr.port());
    assert_eq!(reader.fetch(&by_name).await.unwrap().text, page.text);

    let plain = reader.fetch(&server.url("/plain")).await.unwrap();
    assert_eq!((plain.title, plain.text.as_str()), (None, "just text"));
    assert_eq!(
        reader.fetch(&server.url("/untyped")).await.unwrap().text,
        "sniffed"
    );

    // Relative redirects are followed and the final URL reported.
    let redirected = reader.fetch(&server.url("/old")).await.unwrap();
    assert_eq!(redirected.url, server.url("/page"));

    assert!(matches!(
        reader.fetch(&server.url("/pdf")).await,
        Err(ReaderError::UnsupportedContentType(ct)) if ct == "application/pdf"
    ));
    assert!(matches!(
        reader.fetch(&server.url("/missing")).await,
        Err(ReaderError::Status(404))
    ));
    // Even with allow_private, the metadata endpoint stays off limits.
    assert_blocked(
        reader.fetch("http://169.254.169.254/").await,
        AddressClass::CloudMetadata,
    );
}

#[tokio::test]
async fn body_is_capped_while_streaming() {
    let server = TestServer::start(|_: &Request| Reply::endless("text/html")).await;
    let reader = reader(ReaderOptions {
        allow_private: true,
        max_bytes: 64 * 1024,
        timeout: Duration::from_secs(5),
        ..ReaderOptions::default()
    });
    let started = Instant::now();
    let page = reader.fetch(&server.url("/huge")).await.unwrap();
    assert!(page.truncated);
    assert!(page.text.len() <= 64 * 1024);
    assert!(page.text.starts_with("filler filler"));
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn slow_pages_time_out() {
    let server =
        TestServer::start(|_: &Request| Reply::html(PAGE).delayed(Duration::from_secs(5))).await;
    let started = Instant::now();
    match permissive().fetch(&server.url("/slow")).await {
        Err(ReaderError::Timeout(d)) => assert_eq!(d, Duration::from_millis(500)),
        other => panic!("expected Timeout, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn redirects_are_rechecked_and_bounded() {
    let server = TestServer::start(|req: &Request| {
        let port = req
            .header("host")
            .and_then(|h| h.rsplit(':').next())
            .unwrap_or("80")
            .to_string();
        match req.path.as_str() {
            "/to-private" => Reply::redirect("http://10.0.0.1/admin"),
            "/to-metadata" => Reply::redirect("http://169.254.169.254/latest/meta-data/"),
            "/to-ipv6-loopback" => Reply::redirect(&format!("http://[::1]:{port}/page")),
            "/to-file" => Reply::redirect("file:///etc/passwd"),
            "/loop" => Reply::redirect("/loop"),
            "/ok" => Reply::redirect("/page"),
            _ => Reply::html(PAGE),
        }
    })
    .await;
    let reader = pinned_to_loopback();

    assert_eq!(
        reader
            .fetch(&server.url("/ok"))
            .await
            .unwrap()
            .title
            .as_deref(),
        Some("Local & Test")
    );
    // localhost resolves to 127.0.0.1 (allowed) and ::1 (refused): the guard keeps
    // only the allowed address and the fetch succeeds through it.
    let by_name = format!("http://localhost:{}/page", server.addr.port());
    assert!(reader.fetch(&by_name).await.is_ok());
    assert_blocked(
        reader.fetch(&server.url("/to-private")).await,
        AddressClass::Private,
    );
    assert_blocked(
        reader.fetch(&server.url("/to-metadata")).await,
        AddressClass::CloudMetadata,
    );
    assert_blocked(
        reader.fetch(&server.url("/to-ipv6-loopback")).await,
        AddressClass::Loopback,
    );
    assert!(matches!(
        reader.fetch(&server.url("/to-file")).await,
        Err(ReaderError::UnsupportedScheme(_))
    ));
    match reader.fetch(&server.url("/loop")).await {
        Err(ReaderError::TooManyRedirects(5)) => {}
        other => panic!("expected TooManyRedirects, got {other:?}"),
    }
    // Each refused hop stopped at the check: only the loopback server saw requests.
    let paths: Vec<String> = server.requests().into_iter().map(|r| r.path).collect();
    assert!(!paths.contains(&"/admin".to_string()));
}
