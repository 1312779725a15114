//! One ranged HTTP/1.1 GET written straight into a file at an offset.
//!
//! Why our own: this is the transfer that decides how fast a checkpoint
//! arrives, and done in JavaScript it costs four times curl's CPU (HTTP
//! parsing, buffers, garbage collection on the event loop). Here the socket
//! is read into one buffer and written with `pwrite`, nothing else. It does
//! only what a presigned S3 GET needs: `http`/`https` (rustls, webpki roots),
//! a `Content-Length` body, no redirects. Retries, resuming and verifying
//! stay with the caller; this reports exactly how many bytes it wrote, even
//! when it fails, so the caller resumes from there.

use std::fs::OpenOptions;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::fs::FileExt as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Bytes gathered from the socket before each `pwrite`.
const WRITE_BLOCK: usize = 1 << 20;
/// The longest response head we accept.
const MAX_HEAD: usize = 64 << 10;
/// How often a blocked read wakes to check for cancellation.
const POLL: Duration = Duration::from_millis(200);

pub struct RangeRequest {
    pub url: String,
    /// Sent as they are (`Range`, `If-Match`, ...); `Host` and `Connection` are ours.
    pub headers: Vec<(String, String)>,
    pub path: PathBuf,
    /// Where in the file the first byte goes.
    pub offset: u64,
    /// How many bytes to write; the response must have at least this many.
    pub length: u64,
    /// Fail when nothing arrives for this long.
    pub stall: Duration,
}

#[derive(Debug)]
pub enum DownloadFailure {
    /// The server answered with this status (and the start of its body).
    Status { status: u16, body: String },
    /// The connection failed, closed early or sent something we cannot read.
    Network(String),
    /// Nothing arrived for the stall timeout.
    Stalled(Duration),
    /// `cancel` was set.
    Cancelled,
    /// The file could not be written.
    File(String),
}

#[derive(Debug)]
pub struct DownloadError {
    pub failure: DownloadFailure,
    /// Bytes written to the file before the failure, from `offset`.
    pub written: u64,
}

impl std::fmt::Display for DownloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.failure {
            DownloadFailure::Status { status, body } => write!(f, "HTTP {status}: {body}"),
            DownloadFailure::Network(m) => write!(f, "{m} (after {} bytes)", self.written),
            DownloadFailure::Stalled(d) => {
                write!(f, "stalled: nothing received for {} ms (after {} bytes)", d.as_millis(), self.written)
            }
            DownloadFailure::Cancelled => write!(f, "cancelled after {} bytes", self.written),
            DownloadFailure::File(m) => write!(f, "{m}"),
        }
    }
}

struct Url<'a> {
    tls: bool,
    /// `host[:port]` as written in the URL: the `Host` header, which a presigned URL's signature covers.
    authority: &'a str,
    host: &'a str,
    port: u16,
    target: &'a str,
}

fn parse_url(url: &str) -> Result<Url<'_>, String> {
    let (tls, rest) = if let Some(rest) = url.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = url.strip_prefix("http://") {
        (false, rest)
    } else {
        return Err(format!("not an http(s) URL: {url}"));
    };
    let (authority, target) = rest.find('/').map_or((rest, "/"), |i| (&rest[..i], &rest[i..]));
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || authority.starts_with('[') => {
            (host, port.parse().map_err(|_| format!("bad port in {url}"))?)
        }
        _ => (authority, if tls { 443 } else { 80 }),
    };
    if host.is_empty() {
        return Err(format!("no host in {url}"));
    }
    Ok(Url { tls, authority, host: host.trim_start_matches('[').trim_end_matches(']'), port, target })
}

trait Stream: Read + Write {}
impl<T: Read + Write> Stream for T {}

fn connect(url: &Url<'_>, timeout: Duration) -> Result<Box<dyn Stream>, String> {
    let addresses: Vec<_> =
        (url.host, url.port).to_socket_addrs().map_err(|e| format!("cannot resolve {}: {e}", url.host))?.collect();
    let mut last = format!("no address for {}", url.host);
    for address in addresses {
        match TcpStream::connect_timeout(&address, timeout) {
            Ok(tcp) => {
                tcp.set_nodelay(true).ok();
                tcp.set_read_timeout(Some(POLL)).map_err(|e| e.to_string())?;
                tcp.set_write_timeout(Some(timeout)).map_err(|e| e.to_string())?;
                if !url.tls {
                    return Ok(Box::new(tcp));
                }
                let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
                let config =
                    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                        .with_safe_default_protocol_versions()
                        .map_err(|e| e.to_string())?
                        .with_root_certificates(roots)
                        .with_no_client_auth();
                let name = rustls::pki_types::ServerName::try_from(url.host.to_string())
                    .map_err(|e| format!("bad host name {}: {e}", url.host))?;
                let connection = rustls::ClientConnection::new(Arc::new(config), name).map_err(|e| e.to_string())?;
                return Ok(Box::new(rustls::StreamOwned::new(connection, tcp)));
            }
            Err(e) => last = format!("cannot connect to {address}: {e}"),
        }
    }
    Err(last)
}

/// Reads, waking every `POLL` to honour `cancel` and counting silence against `stall`.
fn read_some(
    stream: &mut dyn Stream,
    buffer: &mut [u8],
    cancel: &AtomicBool,
    stall: Duration,
) -> Result<usize, DownloadFailure> {
    let started = Instant::now();
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Err(DownloadFailure::Cancelled);
        }
        match stream.read(buffer) {
            Ok(n) => return Ok(n),
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                if started.elapsed() >= stall {
                    return Err(DownloadFailure::Stalled(stall));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(DownloadFailure::Network(format!("read failed: {e}"))),
        }
    }
}

/// Downloads `request.length` bytes into `request.path` at `request.offset`.
/// `progress(written)` is called after every write with the running total.
pub fn download_range(
    request: &RangeRequest,
    cancel: &AtomicBool,
    progress: &mut dyn FnMut(u64),
) -> Result<u64, DownloadError> {
    let mut written = 0u64;
    let fail = |failure, written| DownloadError { failure, written };
    let url = parse_url(&request.url).map_err(|m| fail(DownloadFailure::Network(m), 0))?;
    let file = OpenOptions::new()
        .write(true)
        .open(&request.path)
        .map_err(|e| fail(DownloadFailure::File(format!("cannot open {}: {e}", request.path.display())), 0))?;
    let mut stream = connect(&url, request.stall).map_err(|m| fail(DownloadFailure::Network(m), 0))?;

    let mut head = format!("GET {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n", url.target, url.authority);
    for (name, value) in &request.headers {
        if name.contains(['\r', '\n', ':']) || value.contains(['\r', '\n']) {
            return Err(fail(DownloadFailure::Network(format!("bad header {name}")), 0));
        }
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.flush())
        .map_err(|e| fail(DownloadFailure::Network(format!("cannot send the request: {e}")), 0))?;

    // The response head, and whatever of the body came with it.
    let mut buffer = vec![0u8; WRITE_BLOCK];
    let mut filled = 0;
    let (status, content_length, body_start) = loop {
        let n =
            read_some(&mut *stream, &mut buffer[filled..MAX_HEAD], cancel, request.stall).map_err(|f| fail(f, 0))?;
        if n == 0 {
            return Err(fail(DownloadFailure::Network("connection closed before the response".into()), 0));
        }
        filled += n;
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(&buffer[..filled]) {
            Ok(httparse::Status::Complete(size)) => {
                let status = response.code.unwrap_or(0);
                let header = |wanted: &str| {
                    response
                        .headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case(wanted))
                        .map(|h| String::from_utf8_lossy(h.value).trim().to_string())
                };
                if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) && status < 300 {
                    return Err(fail(DownloadFailure::Network("chunked responses are not supported".into()), 0));
                }
                let length = header("content-length").and_then(|v| v.parse::<u64>().ok());
                break (status, length, size);
            }
            Ok(httparse::Status::Partial) if filled < MAX_HEAD => {}
            Ok(httparse::Status::Partial) => {
                return Err(fail(DownloadFailure::Network("response head larger than 64 KiB".into()), 0));
            }
            Err(e) => return Err(fail(DownloadFailure::Network(format!("malformed response: {e}")), 0)),
        }
    };
    if !(200..300).contains(&status) {
        let body = String::from_utf8_lossy(&buffer[body_start..filled]).chars().take(512).collect();
        return Err(fail(DownloadFailure::Status { status, body }, 0));
    }
    if content_length.is_some_and(|n| n < request.length) {
        return Err(fail(
            DownloadFailure::Network(format!(
                "the server offers {} bytes where {} were asked for",
                content_length.unwrap_or(0),
                request.length
            )),
            0,
        ));
    }

    // The body: gather a block, write it where it belongs, repeat.
    buffer.copy_within(body_start..filled, 0);
    let mut pending = filled - body_start;
    loop {
        let wanted = (request.length - written) as usize;
        let complete = pending >= wanted;
        if complete || pending == buffer.len() {
            let take = pending.min(wanted);
            file.write_all_at(&buffer[..take], request.offset + written).map_err(|e| {
                let failure = if e.kind() == io::ErrorKind::StorageFull {
                    DownloadFailure::File(format!(
                        "no space left on the device while writing {}",
                        request.path.display()
                    ))
                } else {
                    DownloadFailure::File(format!("cannot write {}: {e}", request.path.display()))
                };
                fail(failure, written)
            })?;
            written += take as u64;
            pending = 0;
            progress(written);
            if complete {
                return Ok(written);
            }
        }
        let n = read_some(&mut *stream, &mut buffer[pending..], cancel, request.stall).map_err(|f| fail(f, written))?;
        if n == 0 {
            // Keep what arrived: the caller resumes from `written`.
            if pending > 0 {
                let _ = file.write_all_at(&buffer[..pending], request.offset + written).map(|()| {
                    written += pending as u64;
                });
            }
            return Err(fail(
                DownloadFailure::Network(format!("connection closed after {written} of {} bytes", request.length)),
                written,
            ));
        }
        pending += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::thread;

    fn serve(response: Vec<u8>, close_after: Option<usize>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        thread::spawn(move || {
            let (mut socket, _) = listener.accept().unwrap();
            let mut request = [0u8; 4096];
            let _ = socket.read(&mut request);
            let end = close_after.unwrap_or(response.len());
            let _ = socket.write_all(&response[..end]);
        });
        format!("http://127.0.0.1:{port}/bucket/key?X-Amz-Signature=abc")
    }

    fn request(url: String, path: PathBuf, offset: u64, length: u64) -> RangeRequest {
        RangeRequest {
            url,
            headers: vec![("Range".into(), format!("bytes={offset}-{}", offset + length - 1))],
            path,
            offset,
            length,
            stall: Duration::from_secs(5),
        }
    }

    #[test]
    fn writes_the_body_at_the_offset_and_reports_progress() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("file");
        std::fs::write(&path, vec![0u8; 3 * WRITE_BLOCK]).unwrap();
        let body: Vec<u8> = (0..2 * WRITE_BLOCK + 7).map(|i| (i % 251) as u8).collect();
        let mut response =
            format!("HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
        response.extend_from_slice(&body);
        let url = serve(response, None);
        let mut reports = vec![];
        let written =
            download_range(&request(url, path.clone(), 100, body.len() as u64), &AtomicBool::new(false), &mut |n| {
                reports.push(n)
            })
            .unwrap();
        assert_eq!(written, body.len() as u64);
        assert_eq!(*reports.last().unwrap(), written);
        assert!(reports.windows(2).all(|w| w[0] < w[1]));
        let file = std::fs::read(&path).unwrap();
        assert_eq!(&file[100..100 + body.len()], &body[..]);
        assert!(file[..100].iter().all(|&b| b == 0));
    }

    #[test]
    fn a_closed_connection_reports_what_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("file");
        std::fs::write(&path, vec![0u8; 1000]).unwrap();
        let body = vec![7u8; 1000];
        let mut response = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n".to_vec();
        let head = response.len();
        response.extend_from_slice(&body);
        let url = serve(response, Some(head + 300));
        let error =
            download_range(&request(url, path.clone(), 0, 1000), &AtomicBool::new(false), &mut |_| {}).unwrap_err();
        assert_eq!(error.written, 300);
        assert!(matches!(error.failure, DownloadFailure::Network(_)));
        assert_eq!(&std::fs::read(&path).unwrap()[..300], &body[..300]);
    }

    #[test]
    fn an_error_status_is_reported_with_its_body() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("file");
        std::fs::write(&path, b"").unwrap();
        let url = serve(b"HTTP/1.1 412 Precondition Failed\r\nContent-Length: 9\r\n\r\nno match!".to_vec(), None);
        let error = download_range(&request(url, path, 0, 10), &AtomicBool::new(false), &mut |_| {}).unwrap_err();
        match error.failure {
            DownloadFailure::Status { status, body } => {
                assert_eq!(status, 412);
                assert_eq!(body, "no match!");
            }
            other => panic!("expected a status, got {other:?}"),
        }
    }

    #[test]
    fn a_silent_server_stalls_and_cancel_stops_a_transfer() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        thread::spawn(move || {
            let held: Vec<_> = listener.incoming().take(2).filter_map(Result::ok).collect();
            thread::sleep(Duration::from_secs(3));
            drop(held);
        });
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("file");
        std::fs::write(&path, b"").unwrap();
        let mut stalled = request(format!("http://127.0.0.1:{port}/k"), path.clone(), 0, 10);
        stalled.stall = Duration::from_millis(400);
        let error = download_range(&stalled, &AtomicBool::new(false), &mut |_| {}).unwrap_err();
        assert!(matches!(error.failure, DownloadFailure::Stalled(_)));
        let cancelled = request(format!("http://127.0.0.1:{port}/k"), path, 0, 10);
        let error = download_range(&cancelled, &AtomicBool::new(true), &mut |_| {}).unwrap_err();
        assert!(matches!(error.failure, DownloadFailure::Cancelled));
    }

    #[test]
    fn parses_urls() {
        let u = parse_url("https://s3.us-west-004.backblazeb2.com/b/k?x=1").unwrap();
        assert!(u.tls && u.port == 443 && u.host == "s3.us-west-004.backblazeb2.com" && u.target == "/b/k?x=1");
        let u = parse_url("http://127.0.0.1:9000/b/k").unwrap();
        assert!(!u.tls && u.port == 9000 && u.host == "127.0.0.1" && u.authority == "127.0.0.1:9000");
        assert!(parse_url("ftp://x/y").is_err());
    }
}
