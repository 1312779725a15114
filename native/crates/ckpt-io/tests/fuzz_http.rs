//! Fuzz target: the HTTP response as `http::download_range` reads it (status
//! line, headers, content length, chunked framing, body), from a server on
//! 127.0.0.1 that answers each request with a generated or mutated response
//! and closes.
//!
//! Properties: no panic and a return within the budget; never more than the
//! asked length written, nor anything outside its range of the file; a
//! well-formed response with enough body is written exactly; a failure says
//! how many bytes it kept, and those bytes are the ones sent.

mod fuzz;

use ckpt_io::http::{DownloadFailure, RangeRequest, download_range};
use fuzz::config::{self, Outcome};
use fuzz::mutate;
use proptest::prelude::*;
use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

const OFFSET: u64 = 16;
const STALL: Duration = Duration::from_millis(500);
const BUDGET: Duration = Duration::from_secs(20);

/// A response and, when it is well-formed, the body a client must find in it.
#[derive(Debug, Clone)]
struct Response {
    bytes: Vec<u8>,
    body: Option<Vec<u8>>,
}

/// A server on 127.0.0.1 that answers every connection with the next queued response, then closes it.
struct Server {
    port: u16,
    queue: mpsc::Sender<Vec<u8>>,
}

fn server() -> &'static Mutex<Server> {
    static SERVER: std::sync::OnceLock<Mutex<Server>> = std::sync::OnceLock::new();
    SERVER.get_or_init(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (queue, responses) = mpsc::channel::<Vec<u8>>();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let response = responses.try_recv().unwrap_or_default();
                stream.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                // Read the request head (bounded), then answer and close.
                let mut head = Vec::new();
                let mut byte = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
                    match stream.read(&mut byte) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&byte[..n]),
                    }
                }
                let _ = stream.write_all(&response);
            }
        });
        Mutex::new(Server { port, queue })
    })
}

fn response() -> impl Strategy<Value = Response> {
    let status = prop::sample::select(vec![200u16, 206, 204, 304, 404, 412, 500, 503, 999, 100, 42]);
    let body = prop::collection::vec(any::<u8>(), 0..300);
    let framing = 0usize..5;
    let chunk_sizes = prop::collection::vec(1usize..64, 1..6);
    let extra = prop::sample::subsequence(
        vec!["Connection: close", "Content-Type: x", "Content-Length: 5", "Transfer-Encoding: gzip", "X:\u{7f}"],
        0..2,
    );
    (status, body, framing, chunk_sizes, extra).prop_map(|(status, body, framing, chunks, extra)| {
        let mut head = format!("HTTP/1.1 {status} Reason\r\n");
        for line in &extra {
            head.push_str(line);
            head.push_str("\r\n");
        }
        let well_formed = extra.is_empty() && (200..300).contains(&status) && status != 204;
        let (payload, exact) = match framing {
            // Content-Length, right.
            0 => {
                head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
                (body.clone(), true)
            }
            // Content-Length larger than what follows.
            1 => {
                head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len() + 7));
                (body.clone(), false)
            }
            // Chunked.
            2 => {
                head.push_str("Transfer-Encoding: chunked\r\n\r\n");
                let mut payload = Vec::new();
                let mut rest = &body[..];
                for size in chunks.iter().cycle() {
                    if rest.is_empty() {
                        break;
                    }
                    let take = (*size).min(rest.len());
                    payload.extend_from_slice(format!("{take:x}\r\n").as_bytes());
                    payload.extend_from_slice(&rest[..take]);
                    payload.extend_from_slice(b"\r\n");
                    rest = &rest[take..];
                }
                payload.extend_from_slice(b"0\r\n\r\n");
                (payload, true)
            }
            // Chunked with a size line past the data.
            3 => {
                head.push_str("Transfer-Encoding: chunked\r\n\r\n");
                let mut payload = format!("{:x}\r\n", body.len() + 100).into_bytes();
                payload.extend_from_slice(&body);
                (payload, false)
            }
            // No length: the body ends when the connection closes.
            _ => {
                head.push_str("\r\n");
                (body.clone(), true)
            }
        };
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(&payload);
        Response { bytes, body: (well_formed && exact).then_some(body) }
    })
}

fn check(response: Response, length: u64) -> Result<Outcome, TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("target");
    let before = vec![0xAAu8; (OFFSET + length + 8) as usize];
    std::fs::write(&path, &before).unwrap();
    let server = server().lock().unwrap();
    server.queue.send(response.bytes.clone()).unwrap();
    let request = RangeRequest {
        url: format!("http://127.0.0.1:{}/object", server.port),
        headers: vec![("Range".into(), format!("bytes=0-{}", length.saturating_sub(1)))],
        path: path.clone(),
        offset: OFFSET,
        length,
        stall: STALL,
    };
    let result = config::within(BUDGET, "download_range", move || {
        let result = download_range(&request, &Arc::new(AtomicBool::new(false)), &mut |_| {});
        result.map_err(|e| (e.written, format!("{e}"), matches!(e.failure, DownloadFailure::Status { .. })))
    });
    drop(server);
    let after = std::fs::read(&path).unwrap();
    prop_assert_eq!(after.len(), before.len(), "the file changed size");
    let range = OFFSET as usize..(OFFSET + length) as usize;
    prop_assert!(after[..range.start] == before[..range.start], "bytes before the range changed");
    prop_assert!(after[range.end..] == before[range.end..], "bytes after the range changed");
    let written = match &result {
        Ok(written) => *written,
        Err((written, _, _)) => *written,
    };
    prop_assert!(written <= length, "{written} bytes written for {length} asked");
    let untouched = &after[range.start + written as usize..range.end];
    prop_assert!(untouched.iter().all(|&b| b == 0xAA), "bytes past what was reported written changed");
    if let Some(body) = &response.body {
        let written_bytes = &after[range.start..range.start + written as usize];
        prop_assert_eq!(written_bytes, &body[..written as usize], "the bytes written are not the body's");
        if body.len() as u64 >= length {
            prop_assert!(result.is_ok(), "a well-formed response failed: {:?}", result.err());
        }
    }
    Ok(match result {
        Ok(_) => Outcome::Accepted,
        Err(_) => Outcome::Refused,
    })
}

#[test]
fn generated_responses() {
    config::run("http/generated-responses", file!(), 1500, (response(), 0u64..260), |(response, length)| {
        check(response, length)
    });
}

#[test]
fn mutated_responses() {
    let strategy = (response(), mutate::edits(96, 4), 0u64..260);
    config::run("http/mutated-responses", file!(), 1500, strategy, |(response, edits, length)| {
        let bytes = mutate::apply(&response.bytes, &edits);
        check(Response { bytes, body: None }, length)
    });
}
