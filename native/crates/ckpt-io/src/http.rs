//! One ranged HTTP(S) GET written straight into a file at an offset.
//!
//! The HTTP client is `ureq` (HTTP/1.1 over rustls): proxies from the
//! environment (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`),
//! chunked bodies, redirects, IPv6, and the system's CA certificates beside
//! Mozilla's. What is ours is the loop around it, the part that decides how
//! fast a checkpoint arrives: the body is read into one 1 MiB buffer and
//! written with `pwrite`, with no JavaScript per byte. A read that waits
//! longer than the stall timeout fails; `cancel` is honoured within 200 ms
//! even while a read waits (see `Cancellable`). Retries, resuming and
//! verifying stay with the caller; this reports exactly how many bytes it
//! wrote, even when it fails, so the caller resumes from there.

use std::fs::OpenOptions;
use std::io::{self, Read};
use std::os::unix::fs::FileExt as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use ureq::tls::{Certificate, RootCerts, TlsConfig};
use ureq::unversioned::resolver::DefaultResolver;
use ureq::unversioned::transport::time::Duration as Budget;
use ureq::unversioned::transport::{Buffers, ConnectionDetails, Connector, DefaultConnector, NextTimeout, Transport};

/// Bytes gathered from the socket before each `pwrite`.
const WRITE_BLOCK: usize = 1 << 20;
/// How often a waiting read wakes to check for cancellation.
const POLL: Duration = Duration::from_millis(200);
/// Writeback of the downloaded bytes is started every this many bytes, so the
/// caller's final flush (a resolved checkpoint is always flushed) waits only for the tail.
const WRITEBACK_STEP: u64 = 64 << 20;

pub struct RangeRequest {
    pub url: String,
    /// Sent as they are (`Range`, `If-Match`, ...).
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
    /// The file's disk is full.
    NoSpace,
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
            DownloadFailure::NoSpace => write!(f, "no space left on the device (after {} bytes)", self.written),
        }
    }
}

/// The trusted roots, loaded once: the system's store (which is where corporate
/// CAs live, and what `SSL_CERT_FILE`/`SSL_CERT_DIR` point at) and Mozilla's.
fn root_certificates() -> Arc<Vec<Certificate<'static>>> {
    static ROOTS: OnceLock<Arc<Vec<Certificate<'static>>>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            // Unreadable system certificates are skipped: Mozilla's roots remain.
            let system = rustls_native_certs::load_native_certs().certs;
            let mozilla = webpki_root_certs::TLS_SERVER_ROOT_CERTS.iter();
            let all = system
                .iter()
                .map(|der| Certificate::from_der(der.as_ref()).to_owned())
                .chain(mozilla.map(|der| Certificate::from_der(der.as_ref()).to_owned()))
                .collect();
            Arc::new(all)
        })
        .clone()
}

/// An agent for one download: its connections honour `cancel`, statuses are
/// answers rather than errors, and no body is decompressed.
fn agent(stall: Duration, cancel: Arc<AtomicBool>) -> ureq::Agent {
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        // Reads of up to a whole write block: fewer system calls for a GiB than the 128 KiB default.
        .input_buffer_size(WRITE_BLOCK)
        .timeout_connect(Some(stall))
        .timeout_per_read(Some(stall))
        .timeout_per_write(Some(stall))
        .tls_config(TlsConfig::builder().root_certs(RootCerts::Specific(root_certificates())).build())
        .build();
    let connector = DefaultConnector::default().chain(CancelConnector { cancel });
    ureq::Agent::with_parts(config, connector, DefaultResolver::default())
}

/// Wraps every connection in `Cancellable`.
#[derive(Debug)]
struct CancelConnector {
    cancel: Arc<AtomicBool>,
}

impl<In: Transport> Connector<In> for CancelConnector {
    type Out = Cancellable<In>;

    fn connect(&self, _: &ConnectionDetails, chained: Option<In>) -> Result<Option<Self::Out>, ureq::Error> {
        Ok(chained.map(|inner| Cancellable { inner, cancel: Arc::clone(&self.cancel) }))
    }
}

/// A connection whose reads wait in slices of `POLL`, checking `cancel` between them,
/// so a cancelled download stops promptly even when the server has gone silent.
#[derive(Debug)]
struct Cancellable<T> {
    inner: T,
    cancel: Arc<AtomicBool>,
}

fn cancelled() -> ureq::Error {
    ureq::Error::Io(io::Error::new(io::ErrorKind::Interrupted, "cancelled"))
}

impl<T: Transport> Transport for Cancellable<T> {
    fn buffers(&mut self) -> &mut dyn Buffers {
        self.inner.buffers()
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        self.inner.transmit_output(amount, timeout)
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        let started = Instant::now();
        let limit = timeout.per_read.map_or(Duration::MAX, std_duration).min(std_duration(timeout.after));
        loop {
            if self.cancel.load(Ordering::Relaxed) {
                return Err(cancelled());
            }
            let left = limit.saturating_sub(started.elapsed());
            let slice = NextTimeout { after: Budget::Exact(left.min(POLL)), per_read: None, ..timeout };
            match self.inner.await_input(slice) {
                // Our slice ran out, not the caller's budget: wait on.
                Err(ureq::Error::Timeout(_)) if started.elapsed() < limit => continue,
                // The caller's budget ran out: report its reason.
                Err(ureq::Error::Timeout(_)) => return Err(ureq::Error::Timeout(timeout.for_read().reason)),
                other => return other,
            }
        }
    }

    fn is_open(&mut self) -> bool {
        self.inner.is_open()
    }

    fn is_tls(&self) -> bool {
        self.inner.is_tls()
    }
}

fn std_duration(budget: Budget) -> Duration {
    match budget {
        Budget::Exact(duration) => duration,
        Budget::NotHappening => Duration::MAX,
    }
}

/// What a ureq failure means for the caller.
fn classify(error: ureq::Error, stall: Duration, cancel: &AtomicBool) -> DownloadFailure {
    if cancel.load(Ordering::Relaxed) {
        return DownloadFailure::Cancelled;
    }
    match error {
        ureq::Error::Timeout(ureq::Timeout::PerRead) => DownloadFailure::Stalled(stall),
        ureq::Error::Timeout(which) => DownloadFailure::Network(format!("timed out ({which:?})")),
        ureq::Error::Io(e) if e.kind() == io::ErrorKind::Interrupted => DownloadFailure::Cancelled,
        other => DownloadFailure::Network(other.to_string()),
    }
}

/// Downloads `request.length` bytes into `request.path` at `request.offset`.
/// `progress(written)` is called after every write with the running total.
pub fn download_range(
    request: &RangeRequest,
    cancel: &Arc<AtomicBool>,
    progress: &mut dyn FnMut(u64),
) -> Result<u64, DownloadError> {
    let mut written = 0u64;
    let fail = |failure, written| DownloadError { failure, written };
    if cancel.load(Ordering::Relaxed) {
        return Err(fail(DownloadFailure::Cancelled, 0));
    }
    if !(request.url.starts_with("http://") || request.url.starts_with("https://")) {
        return Err(fail(DownloadFailure::Network(format!("not an http(s) URL: {}", request.url)), 0));
    }
    let file = OpenOptions::new()
        .write(true)
        .open(&request.path)
        .map_err(|e| fail(DownloadFailure::File(format!("cannot open {}: {e}", request.path.display())), 0))?;

    let mut get = agent(request.stall, Arc::clone(cancel)).get(&request.url);
    for (name, value) in &request.headers {
        if name.contains(['\r', '\n', ':']) || value.contains(['\r', '\n']) {
            return Err(fail(DownloadFailure::Network(format!("bad header {name}")), 0));
        }
        get = get.header(name.as_str(), value.as_str());
    }
    let mut response = get.call().map_err(|e| fail(classify(e, request.stall, cancel), 0))?;
    let status = response.status().as_u16();
    let offered = response.headers().get("content-length").and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
    let mut body = response.body_mut().as_reader();
    if !(200..300).contains(&status) {
        let mut start = Vec::new();
        let _ = body.by_ref().take(512).read_to_end(&mut start);
        let body = String::from_utf8_lossy(&start).into_owned();
        return Err(fail(DownloadFailure::Status { status, body }, 0));
    }
    if offered.is_some_and(|n| n < request.length) {
        return Err(fail(
            DownloadFailure::Network(format!(
                "the server offers {} bytes where {} were asked for",
                offered.unwrap_or(0),
                request.length
            )),
            0,
        ));
    }

    // The body: gather a block, write it where it belongs, repeat.
    let mut buffer = vec![0u8; WRITE_BLOCK];
    let mut pending = 0usize;
    let mut writeback_from = 0u64;
    loop {
        let wanted = (request.length - written) as usize;
        let complete = pending >= wanted;
        if complete || pending == buffer.len() {
            let take = pending.min(wanted);
            write_block(&file, &buffer[..take], request, written).map_err(|f| fail(f, written))?;
            written += take as u64;
            pending = 0;
            if written - writeback_from >= WRITEBACK_STEP {
                crate::writeback::start(&file, request.offset + writeback_from, written - writeback_from);
                writeback_from = written;
            }
            progress(written);
            if complete {
                return Ok(written);
            }
        }
        let room = (buffer.len() - pending).min(wanted - pending);
        let n = match body.read(&mut buffer[pending..pending + room]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted && !cancel.load(Ordering::Relaxed) => continue,
            Err(e) => {
                // Keep what arrived: the caller resumes from `written`.
                let kept = keep_pending(&file, &buffer[..pending], request, &mut written);
                let failure = classify(unwrap_io(e), request.stall, cancel);
                return Err(fail(
                    if kept { failure } else { DownloadFailure::File("cannot keep what arrived".into()) },
                    written,
                ));
            }
        };
        if n == 0 {
            keep_pending(&file, &buffer[..pending], request, &mut written);
            return Err(fail(
                DownloadFailure::Network(format!("connection closed after {written} of {} bytes", request.length)),
                written,
            ));
        }
        pending += n;
    }
}

/// A failure that crossed `Read` as an `io::Error`: the ureq error inside when there is one,
/// else the `io::Error` itself (a reset connection keeps its own message).
fn unwrap_io(error: io::Error) -> ureq::Error {
    if !error.get_ref().is_some_and(|inner| inner.is::<ureq::Error>()) {
        return ureq::Error::Io(error);
    }
    match error.into_inner().map(|inner| inner.downcast::<ureq::Error>()) {
        Some(Ok(ureq_error)) => *ureq_error,
        _ => ureq::Error::Io(io::Error::other("read failed")), // unreachable: checked above
    }
}

fn write_block(
    file: &std::fs::File,
    bytes: &[u8],
    request: &RangeRequest,
    written: u64,
) -> Result<(), DownloadFailure> {
    file.write_all_at(bytes, request.offset + written).map_err(|e| {
        if e.kind() == io::ErrorKind::StorageFull || e.kind() == io::ErrorKind::QuotaExceeded {
            DownloadFailure::NoSpace
        } else {
            DownloadFailure::File(format!("cannot write {}: {e}", request.path.display()))
        }
    })
}

/// Writes what arrived before a failure, so the caller can resume after it. False when it could not.
fn keep_pending(file: &std::fs::File, pending: &[u8], request: &RangeRequest, written: &mut u64) -> bool {
    if pending.is_empty() {
        return true;
    }
    let ok = write_block(file, pending, request, *written).is_ok();
    if ok {
        *written += pending.len() as u64;
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::TcpListener;
    use std::thread;

    fn serve(response: Vec<u8>, close_after: Option<usize>) -> String {
        let port = answer_once(TcpListener::bind("127.0.0.1:0").unwrap(), response, close_after, Duration::ZERO);
        format!("http://127.0.0.1:{port}/bucket/key?X-Amz-Signature=abc")
    }

    /// Answers one request on `listener` with `response` (cut at `close_after`), then holds
    /// the connection open for `hold` before closing it. Returns the port.
    fn answer_once(listener: TcpListener, response: Vec<u8>, close_after: Option<usize>, hold: Duration) -> u16 {
        let port = listener.local_addr().unwrap().port();
        thread::spawn(move || {
            let (mut socket, _) = listener.accept().unwrap();
            let mut request = [0u8; 4096];
            let _ = socket.read(&mut request);
            let end = close_after.unwrap_or(response.len());
            let _ = socket.write_all(&response[..end]);
            thread::sleep(hold);
        });
        port
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
        let written = download_range(
            &request(url, path.clone(), 100, body.len() as u64),
            &Arc::new(AtomicBool::new(false)),
            &mut |n| reports.push(n),
        )
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
            download_range(&request(url, path.clone(), 0, 1000), &Arc::new(AtomicBool::new(false)), &mut |_| {})
                .unwrap_err();
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
        let error =
            download_range(&request(url, path, 0, 10), &Arc::new(AtomicBool::new(false)), &mut |_| {}).unwrap_err();
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
        let error = download_range(&stalled, &Arc::new(AtomicBool::new(false)), &mut |_| {}).unwrap_err();
        assert!(matches!(error.failure, DownloadFailure::Stalled(_)));
        let cancelled = request(format!("http://127.0.0.1:{port}/k"), path, 0, 10);
        let error = download_range(&cancelled, &Arc::new(AtomicBool::new(true)), &mut |_| {}).unwrap_err();
        assert!(matches!(error.failure, DownloadFailure::Cancelled));
    }

    #[test]
    fn chunked_bodies_and_redirects_are_followed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("file");
        std::fs::write(&path, vec![0u8; 20]).unwrap();
        let chunked =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n".to_vec();
        let target = serve(chunked, None);
        let redirect = format!("HTTP/1.1 307 Temporary Redirect\r\nLocation: {target}\r\nContent-Length: 0\r\n\r\n");
        let url = serve(redirect.into_bytes(), None);
        let written =
            download_range(&request(url, path.clone(), 3, 11), &Arc::new(AtomicBool::new(false)), &mut |_| {}).unwrap();
        assert_eq!(written, 11);
        assert_eq!(&std::fs::read(&path).unwrap()[3..14], b"hello world");
    }

    #[test]
    fn ipv6_addresses_are_reached() {
        let Ok(listener) = TcpListener::bind("[::1]:0") else {
            eprintln!("skipped: no IPv6 loopback here");
            return;
        };
        let response = b"HTTP/1.1 206 Partial Content\r\nContent-Length: 3\r\n\r\nv6!".to_vec();
        let port = answer_once(listener, response, None, Duration::ZERO);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("file");
        std::fs::write(&path, b"...").unwrap();
        let url = format!("http://[::1]:{port}/k");
        download_range(&request(url, path.clone(), 0, 3), &Arc::new(AtomicBool::new(false)), &mut |_| {}).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"v6!");
    }

    #[test]
    fn cancel_stops_a_read_that_waits_on_a_silent_server() {
        let response = b"HTTP/1.1 206 Partial Content\r\nContent-Length: 100\r\n\r\nfirst".to_vec();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = answer_once(listener, response, None, Duration::from_secs(5));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("file");
        std::fs::write(&path, vec![0u8; 100]).unwrap();
        let cancel = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&cancel);
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(300));
            flag.store(true, Ordering::Relaxed);
        });
        let started = Instant::now();
        let error =
            download_range(&request(format!("http://127.0.0.1:{port}/k"), path.clone(), 0, 100), &cancel, &mut |_| {})
                .unwrap_err();
        assert!(matches!(error.failure, DownloadFailure::Cancelled), "{error}");
        assert!(started.elapsed() < Duration::from_secs(2), "cancelled within a poll, not at the stall timeout");
        assert_eq!(error.written, 5, "what arrived before the cancel is kept");
        assert_eq!(&std::fs::read(&path).unwrap()[..5], b"first");
    }

    #[test]
    fn other_schemes_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("file");
        std::fs::write(&path, b"").unwrap();
        let error =
            download_range(&request("ftp://x/y".into(), path, 0, 1), &Arc::new(AtomicBool::new(false)), &mut |_| {})
                .unwrap_err();
        assert!(matches!(error.failure, DownloadFailure::Network(_)));
    }
}
