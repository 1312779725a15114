//! Node-API binding of `ckpt-io`. This crate only converts types: every
//! behaviour lives in `ckpt-io`, where `cargo test` covers it.
//!
//! Errors cross as JavaScript Error objects with typed fields: `code` (the
//! stable `CKPT_*` code), `path`, and for downloads `kind`, `status` and
//! `written`. Work done off the JavaScript thread keeps its failure whole
//! until `reject`, where the object can be built.

use ckpt_io::{IoError, MappedFile, to_hex};
use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A value of a typed field on a failure.
enum Field {
    Text(String),
    Number(f64),
}

/// A failure on its way to JavaScript, built into an Error object there.
pub struct Failure {
    code: &'static str,
    message: String,
    fields: Vec<(&'static str, Field)>,
}

impl From<IoError> for Failure {
    fn from(error: IoError) -> Self {
        let mut fields = Vec::new();
        if let Some(path) = error.path() {
            fields.push(("path", Field::Text(path.to_string_lossy().into_owned())));
        }
        Failure { code: error.code(), message: error.to_string(), fields }
    }
}

impl Failure {
    /// The Error object: `message`, `code` and the fields as properties.
    fn into_js(self, env: &Env) -> Error {
        let build = || -> Result<Error> {
            let js = JsError::from(Error::new(self.code, self.message.clone())).into_unknown(*env);
            let mut object: Object = unsafe { js.cast()? };
            for (name, value) in &self.fields {
                match value {
                    Field::Text(text) => object.set(name, text.as_str())?,
                    Field::Number(number) => object.set(name, *number)?,
                }
            }
            Ok(Error::from(js))
        };
        build().unwrap_or_else(|error| error)
    }
}

/// An IoError thrown on the JavaScript thread.
fn to_js_error(env: &Env, error: IoError) -> Error {
    Failure::from(error).into_js(env)
}

fn invalid(env: &Env, message: String) -> Error {
    to_js_error(env, IoError::InvalidArgument(message))
}

/// Work for a worker thread whose failure becomes a typed Error object.
pub trait Work: Send + Sized {
    type Output: Send + Sized + 'static + ToNapiValue + TypeName;
    fn run(&mut self) -> std::result::Result<Self::Output, Failure>;
}

/// Runs a `Work` off the JavaScript thread, keeping its failure for `reject`.
pub struct Job<W: Work> {
    work: W,
    failure: Option<Failure>,
}

impl<W: Work> Job<W> {
    fn task(work: W) -> AsyncTask<Self> {
        AsyncTask::new(Job { work, failure: None })
    }
}

impl<W: Work> Task for Job<W> {
    type Output = W::Output;
    type JsValue = W::Output;

    fn compute(&mut self) -> Result<W::Output> {
        self.work.run().map_err(|failure| {
            let placeholder = Error::new(Status::GenericFailure, failure.message.clone());
            self.failure = Some(failure);
            placeholder
        })
    }

    fn resolve(&mut self, _env: Env, output: W::Output) -> Result<W::Output> {
        Ok(output)
    }

    fn reject(&mut self, env: Env, error: Error) -> Result<W::Output> {
        Err(self.failure.take().map_or(error, |failure| failure.into_js(&env)))
    }
}

/// Bytes done and bytes in all, passed to progress callbacks.
#[napi(object)]
pub struct Progress {
    pub bytes_done: f64,
    pub bytes_total: f64,
}

type ProgressFn = ThreadsafeFunction<Progress, (), Progress, Status, false, true>;

fn progress_fn(callback: Option<Function<Progress, ()>>) -> Result<Option<ProgressFn>> {
    callback.map(|f| f.build_threadsafe_function().callee_handled::<false>().weak::<true>().build()).transpose()
}

/// Forwards progress to JavaScript at most every 50 ms. The final report is
/// waited for, so it reaches JavaScript before the promise settles.
struct Reporter {
    callback: Option<ProgressFn>,
    last: Mutex<Option<Instant>>,
    finished: AtomicBool,
}

impl Reporter {
    fn new(callback: Option<ProgressFn>) -> Self {
        Reporter { callback, last: Mutex::new(None), finished: AtomicBool::new(false) }
    }

    fn report(&self, done: u64, total: u64) {
        let Some(callback) = &self.callback else { return };
        let mut last = self.last.lock().unwrap();
        let progress = Progress { bytes_done: done as f64, bytes_total: total as f64 };
        if done == total {
            if self.finished.swap(true, Ordering::AcqRel) {
                return;
            }
            let (delivered_tx, delivered_rx) = std::sync::mpsc::channel();
            let status =
                callback.call_with_return_value(progress, ThreadsafeFunctionCallMode::NonBlocking, move |_, _| {
                    let _ = delivered_tx.send(());
                    Ok(())
                });
            if status == Status::Ok {
                // Bounded, so a JavaScript thread that is shutting down cannot hold us forever.
                let _ = delivered_rx.recv_timeout(Duration::from_secs(5));
            }
        } else if last.is_none_or(|t| t.elapsed() >= Duration::from_millis(50)) {
            *last = Some(Instant::now());
            callback.call(progress, ThreadsafeFunctionCallMode::NonBlocking);
        }
    }
}

pub struct HashFile {
    path: PathBuf,
    reporter: Reporter,
}

impl Work for HashFile {
    type Output = String;

    fn run(&mut self) -> std::result::Result<String, Failure> {
        let reporter = &self.reporter;
        let digest = ckpt_io::sha256_file(&self.path, &mut |done, total| reporter.report(done, total))?;
        Ok(to_hex(&digest))
    }
}

/// SHA-256 of a file as lowercase hex, computed off the JavaScript thread.
#[napi(ts_return_type = "Promise<string>")]
pub fn sha256_file(path: String, on_progress: Option<Function<Progress, ()>>) -> Result<AsyncTask<Job<HashFile>>> {
    Ok(Job::task(HashFile { path: path.into(), reporter: Reporter::new(progress_fn(on_progress)?) }))
}

pub struct HashFiles {
    paths: Vec<PathBuf>,
    reporter: Reporter,
}

impl Work for HashFiles {
    type Output = Vec<String>;

    fn run(&mut self) -> std::result::Result<Vec<String>, Failure> {
        let reporter = &self.reporter;
        ckpt_io::sha256_files(&self.paths, &|done, total| reporter.report(done, total))
            .into_iter()
            .map(|r| r.map(|d| to_hex(&d)).map_err(Failure::from))
            .collect()
    }
}

/// SHA-256 of several files, in parallel across the cores; digests in input order.
#[napi(ts_return_type = "Promise<string[]>")]
pub fn sha256_files(
    paths: Vec<String>,
    on_progress: Option<Function<Progress, ()>>,
) -> Result<AsyncTask<Job<HashFiles>>> {
    let paths = paths.into_iter().map(PathBuf::from).collect();
    Ok(Job::task(HashFiles { paths, reporter: Reporter::new(progress_fn(on_progress)?) }))
}

/// A streaming SHA-256 hasher. The state sits behind a mutex so that
/// `updateFromFile` can hash on a worker thread.
#[napi(js_name = "Sha256")]
pub struct JsSha256 {
    inner: Arc<Mutex<Option<ckpt_io::Sha256>>>,
}

impl Default for JsSha256 {
    fn default() -> Self {
        Self::new()
    }
}

fn finished() -> IoError {
    IoError::InvalidArgument("Sha256 used after digest(): create a new Sha256".into())
}

#[napi]
impl JsSha256 {
    #[napi(constructor)]
    pub fn new() -> Self {
        JsSha256 { inner: Arc::new(Mutex::new(Some(ckpt_io::Sha256::new()))) }
    }

    #[napi]
    pub fn update(&mut self, env: Env, data: Uint8ArraySlice) -> Result<()> {
        self.inner.lock().unwrap().as_mut().ok_or_else(|| to_js_error(&env, finished()))?.update(&data);
        Ok(())
    }

    /// Hashes `length` bytes of the file at `path` from `offset`, off the JavaScript thread.
    /// Await it before the next update: calls are applied in the order they run.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn update_from_file(
        &self,
        env: Env,
        path: String,
        offset: f64,
        length: f64,
    ) -> Result<AsyncTask<Job<HashRange>>> {
        if !(offset >= 0.0 && length >= 0.0 && offset.fract() == 0.0 && length.fract() == 0.0) {
            return Err(invalid(&env, format!("offset {offset} and length {length} must be whole numbers >= 0")));
        }
        Ok(Job::task(HashRange {
            hasher: self.inner.clone(),
            path: path.into(),
            offset: offset as u64,
            length: length as u64,
        }))
    }

    /// Finishes and returns the hex digest; the hasher cannot be used afterwards.
    #[napi]
    pub fn digest(&mut self, env: Env) -> Result<String> {
        let hasher = self.inner.lock().unwrap().take().ok_or_else(|| to_js_error(&env, finished()))?;
        Ok(to_hex(&hasher.finish()))
    }
}

pub struct HashRange {
    hasher: Arc<Mutex<Option<ckpt_io::Sha256>>>,
    path: PathBuf,
    offset: u64,
    length: u64,
}

impl Work for HashRange {
    type Output = ();

    fn run(&mut self) -> std::result::Result<(), Failure> {
        let mut hasher = self.hasher.lock().unwrap();
        let hasher = hasher.as_mut().ok_or_else(finished)?;
        Ok(hasher.update_from_file(&self.path, self.offset, self.length)?)
    }
}

/// A mapped file handing out zero-copy views.
#[napi]
pub struct NativeMappedFile {
    inner: Option<Arc<MappedFile>>,
    size: u64,
    copy: bool,
}

#[napi]
impl NativeMappedFile {
    /// Maps `path`. With `copy`, views are copied out instead of pointing into the mapping.
    #[napi(factory)]
    pub fn open(env: Env, path: String, copy: bool) -> Result<Self> {
        let map = MappedFile::open(path.as_ref()).map_err(|e| to_js_error(&env, e))?;
        Ok(NativeMappedFile { size: map.len(), inner: Some(Arc::new(map)), copy })
    }

    #[napi(getter)]
    pub fn size(&self) -> f64 {
        self.size as f64
    }

    fn mapped(&self, env: &Env) -> Result<&Arc<MappedFile>> {
        self.inner.as_ref().ok_or_else(|| invalid(env, "the mapped file is closed".into()))
    }

    /// The bytes `[offset, offset + length)`, copied out of the mapping (the path
    /// for runtimes that forbid external buffers, and for `copy: true`).
    #[napi]
    pub fn copy_range<'env>(&self, env: &'env Env, offset: f64, length: f64) -> Result<Uint8ArraySlice<'env>> {
        let map = self.mapped(env)?;
        let (offset, length) = (to_u64(env, offset, "offset")?, to_u64(env, length, "length")?);
        let bytes = map.range(offset, length).map_err(|e| to_js_error(env, e))?;
        if bytes.is_empty() {
            return Uint8ArraySlice::from_data(env, Vec::<u8>::new());
        }
        Uint8ArraySlice::copy_from(env, bytes)
    }

    /// An external ArrayBuffer over `[offset, offset + length)` of the mapping,
    /// for zero-copy views made in JavaScript; it holds the mapping until it is
    /// garbage-collected. Null where the runtime forbids external buffers
    /// (Electron): use `copyRange` then.
    ///
    /// The wrapper asks for a few large windows rather than one buffer per
    /// view: V8 counts every external buffer's length as memory pressure, and a
    /// thousand views of a 2 GiB file would set off a collection for each.
    /// Windows stay within the runtime's buffer limit (4 GiB on Node 20):
    /// Node builds external ArrayBuffers as Buffers and refuses longer ones.
    #[napi(ts_return_type = "ArrayBuffer | null")]
    pub fn buffer(&self, env: &Env, offset: f64, length: f64) -> Result<Option<ArrayBuffer<'_>>> {
        let map = self.mapped(env)?;
        let (offset, length) = (to_u64(env, offset, "offset")?, to_u64(env, length, "length")?);
        let bytes = map.range(offset, length).map_err(|e| to_js_error(env, e))?;
        if bytes.is_empty() || self.copy {
            return Ok(None);
        }
        let keep_alive = Box::into_raw(Box::new(Arc::clone(map)));
        let mut value = std::ptr::null_mut();
        // Safety: the memory stays mapped while `keep_alive` lives; the
        // finalizer frees it when the ArrayBuffer is collected.
        let status = unsafe {
            napi::sys::napi_create_external_arraybuffer(
                env.raw(),
                bytes.as_ptr() as *mut std::ffi::c_void,
                bytes.len(),
                Some(release_mapping),
                keep_alive.cast(),
                &mut value,
            )
        };
        if status == napi::sys::Status::napi_no_external_buffers_allowed {
            // Refused up front, before taking ownership of the hint.
            drop(unsafe { Box::from_raw(keep_alive) });
            return Ok(None);
        }
        if status != napi::sys::Status::napi_ok {
            // Node may already have run the finalizer on this path; freeing the
            // hint here could free it twice, so it is left to leak.
            return Err(Error::new(Status::GenericFailure, "could not create an external ArrayBuffer"));
        }
        Ok(Some(unsafe { ArrayBuffer::from_napi_value(env.raw(), value)? }))
    }

    /// True once a read hit a page the file no longer has (it shrank while mapped).
    #[napi]
    pub fn truncated(&self, env: Env) -> Result<bool> {
        Ok(self.mapped(&env)?.truncated())
    }

    /// Throws `CKPT_FILE_CHANGED` when the file was modified since it was mapped.
    #[napi]
    pub fn ensure_unchanged(&self, env: Env) -> Result<()> {
        self.mapped(&env)?.ensure_unchanged().map_err(|e| to_js_error(&env, e))
    }

    /// Releases this handle's hold on the mapping; views still alive keep it until collected.
    #[napi]
    pub fn close(&mut self) {
        self.inner = None;
    }
}

unsafe extern "C" fn release_mapping(
    _env: napi::sys::napi_env,
    _data: *mut std::ffi::c_void,
    hint: *mut std::ffi::c_void,
) {
    drop(unsafe { Box::from_raw(hint.cast::<Arc<MappedFile>>()) });
}

fn to_u64(env: &Env, value: f64, name: &str) -> Result<u64> {
    if value.is_finite() && value >= 0.0 && value.fract() == 0.0 && value <= 9_007_199_254_740_991.0 {
        Ok(value as u64)
    } else {
        Err(invalid(env, format!("{name} must be a non-negative safe integer, got {value}")))
    }
}

/// Digest and size of an atomic write.
#[napi(object)]
pub struct WriteResult {
    pub sha256: String,
    pub size: f64,
}

pub struct WriteFile {
    path: PathBuf,
    chunks: Vec<Uint8Array>,
    fsync: bool,
    reporter: Reporter,
}

impl Work for WriteFile {
    type Output = WriteResult;

    fn run(&mut self) -> std::result::Result<WriteResult, Failure> {
        let chunks: Vec<&[u8]> = self.chunks.iter().map(|c| c.as_ref()).collect();
        let reporter = &self.reporter;
        let summary = ckpt_io::write_file_atomic(&self.path, &chunks, self.fsync, &mut |done, total| {
            reporter.report(done, total)
        })?;
        Ok(WriteResult { sha256: to_hex(&summary.sha256), size: summary.size as f64 })
    }
}

/// Writes `chunks` to a temporary beside `path`, hashing in the same pass, then
/// flushes (when `fsync`), renames over `path` and flushes the folder.
#[napi(ts_return_type = "Promise<WriteResult>")]
pub fn write_file_atomic(
    path: String,
    chunks: Vec<Uint8Array>,
    fsync: bool,
    on_progress: Option<Function<Progress, ()>>,
) -> Result<AsyncTask<Job<WriteFile>>> {
    Ok(Job::task(WriteFile { path: path.into(), chunks, fsync, reporter: Reporter::new(progress_fn(on_progress)?) }))
}

pub struct Crc32Task {
    buffers: Vec<Uint8Array>,
}

impl Task for Crc32Task {
    type Output = Vec<u32>;
    type JsValue = Vec<u32>;

    fn compute(&mut self) -> Result<Vec<u32>> {
        let buffers: Vec<&[u8]> = self.buffers.iter().map(|b| b.as_ref()).collect();
        Ok(ckpt_io::crc32_many(&buffers))
    }

    fn resolve(&mut self, _env: Env, output: Vec<u32>) -> Result<Vec<u32>> {
        Ok(output)
    }
}

/// The CRC-32 (zip's checksum) of each buffer, computed off the JavaScript thread across the cores.
#[napi(ts_return_type = "Promise<number[]>")]
pub fn crc32_many(buffers: Vec<Uint8Array>) -> AsyncTask<Crc32Task> {
    AsyncTask::new(Crc32Task { buffers })
}

/// An exclusive inter-process lock; the kernel releases it if the process dies.
#[napi]
pub struct NativeFileLock {
    inner: Option<ckpt_io::FileLock>,
}

#[napi]
impl NativeFileLock {
    /// Releases the lock (idempotent).
    #[napi]
    pub fn release(&mut self) {
        self.inner = None;
    }
}

/// Takes the lock on `path` (creating the file) or returns null when it is held.
#[napi]
pub fn try_lock_file(env: Env, path: String) -> Result<Option<NativeFileLock>> {
    let lock = ckpt_io::try_lock_file(path.as_ref()).map_err(|e| to_js_error(&env, e))?;
    Ok(lock.map(|lock| NativeFileLock { inner: Some(lock) }))
}

/// One ranged GET written into a file (see `ckpt_io::http`).
#[napi(object)]
pub struct DownloadRangeOptions {
    pub url: String,
    pub headers: std::collections::HashMap<String, String>,
    pub path: String,
    pub offset: f64,
    pub length: f64,
    pub stall_ms: f64,
}

/// A download that JavaScript can cancel while it runs on a worker thread.
#[napi]
pub struct NativeDownload {
    cancel: Arc<AtomicBool>,
}

impl Default for NativeDownload {
    fn default() -> Self {
        Self::new()
    }
}

#[napi]
impl NativeDownload {
    #[napi(constructor)]
    pub fn new() -> Self {
        NativeDownload { cancel: Arc::new(AtomicBool::new(false)) }
    }

    /// Stops the transfer at its next read; its promise rejects with kind `cancelled`.
    #[napi]
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }

    /// Runs the download; resolves with the bytes written. `onProgress` gets the running total after every write.
    #[napi(ts_return_type = "Promise<number>")]
    pub fn start(
        &self,
        env: Env,
        options: DownloadRangeOptions,
        on_progress: Option<Function<Progress, ()>>,
    ) -> Result<AsyncTask<Job<Download>>> {
        let whole = |v: f64| v >= 0.0 && v.fract() == 0.0;
        let stall_ok = options.stall_ms.is_finite() && options.stall_ms > 0.0;
        if !whole(options.offset) || !whole(options.length) || !stall_ok {
            return Err(invalid(&env, "offset and length must be whole numbers >= 0 and stallMs > 0".into()));
        }
        Ok(Job::task(Download {
            request: ckpt_io::http::RangeRequest {
                url: options.url,
                headers: options.headers.into_iter().collect(),
                path: options.path.into(),
                offset: options.offset as u64,
                length: options.length as u64,
                stall: Duration::from_millis(options.stall_ms as u64),
            },
            cancel: self.cancel.clone(),
            progress: progress_fn(on_progress)?,
        }))
    }
}

pub struct Download {
    request: ckpt_io::http::RangeRequest,
    cancel: Arc<AtomicBool>,
    progress: Option<ProgressFn>,
}

impl Work for Download {
    type Output = f64;

    fn run(&mut self) -> std::result::Result<f64, Failure> {
        let total = self.request.length as f64;
        let progress = &self.progress;
        let mut report = |written: u64| {
            if let Some(callback) = progress {
                let update = Progress { bytes_done: written as f64, bytes_total: total };
                callback.call(update, ThreadsafeFunctionCallMode::NonBlocking);
            }
        };
        match ckpt_io::http::download_range(&self.request, &self.cancel, &mut report) {
            Ok(written) => Ok(written as f64),
            Err(error) => {
                use ckpt_io::http::DownloadFailure as F;
                let (kind, status) = match &error.failure {
                    F::Status { status, .. } => ("status", *status),
                    F::Network(_) => ("network", 0),
                    F::Stalled(_) => ("stalled", 0),
                    F::Cancelled => ("cancelled", 0),
                    F::File(_) => ("file", 0),
                    F::NoSpace => ("no-space", 0),
                };
                Err(Failure {
                    code: "CKPT_DOWNLOAD",
                    message: error.to_string(),
                    fields: vec![
                        ("kind", Field::Text(kind.into())),
                        ("status", Field::Number(status.into())),
                        ("written", Field::Number(error.written as f64)),
                    ],
                })
            }
        }
    }
}

/// A safetensors header as flat arrays: tensor i is named
/// `names.slice(nameEnds[i - 1] ?? 0, nameEnds[i])`, has dtype number
/// `dtypes[i]`, `ranks[i]` dimensions taken in turn from `dims`, and data
/// from `offsets[i]` to `offsets[i + 1]` of the data section.
#[napi(object)]
pub struct SafetensorsHeaderTable {
    pub header_length: f64,
    pub file_size: f64,
    pub names: String,
    pub name_ends: Uint32Array,
    pub dtypes: Uint8Array,
    pub ranks: Uint8Array,
    pub dims: Float64Array,
    pub offsets: Float64Array,
    /// `__metadata__` as key, value, key, value…, sorted by key.
    pub metadata: Vec<String>,
}

/// Reads and validates a safetensors header with the reference crate, on
/// the calling thread (a header is at most 100 MB, usually a few KB).
#[napi]
pub fn read_safetensors_header(env: Env, path: String) -> Result<SafetensorsHeaderTable> {
    let table = ckpt_io::safetensors::read_header(path.as_ref()).map_err(|e| to_js_error(&env, e))?;
    Ok(SafetensorsHeaderTable {
        header_length: table.header_length as f64,
        file_size: table.file_size as f64,
        names: table.names,
        name_ends: Uint32Array::new(table.name_ends),
        dtypes: Uint8Array::new(table.dtypes),
        ranks: Uint8Array::new(table.ranks),
        dims: Float64Array::new(table.dims),
        offsets: Float64Array::new(table.offsets),
        metadata: table.metadata,
    })
}

/// A folder's entries as flat arrays: entry `i` is named
/// `names.slice(nameEnds[i - 1] ?? 0, nameEnds[i])`, of kind `kinds[i]`
/// (0 file, 1 folder, 2 link, 3 other) and, for a file, `sizes[i]` bytes.
#[napi(object)]
pub struct FolderTable {
    pub names: String,
    pub name_ends: Uint32Array,
    pub kinds: Uint8Array,
    pub sizes: Float64Array,
    /// Entries whose names are not UTF-8, left out.
    pub skipped: u32,
}

pub struct ScanFolder {
    path: PathBuf,
}

impl Work for ScanFolder {
    type Output = FolderTable;

    fn run(&mut self) -> std::result::Result<FolderTable, Failure> {
        let table = ckpt_io::folder::scan(&self.path)?;
        Ok(FolderTable {
            names: table.names,
            name_ends: Uint32Array::new(table.name_ends),
            kinds: Uint8Array::new(table.kinds),
            sizes: Float64Array::new(table.sizes),
            skipped: table.skipped,
        })
    }
}

/// Lists a folder with each entry's kind and size (links not followed), off
/// the JavaScript thread: one `fstatat` per entry.
#[napi(ts_return_type = "Promise<FolderTable>")]
pub fn scan_folder(path: String) -> AsyncTask<Job<ScanFolder>> {
    Job::task(ScanFolder { path: path.into() })
}
