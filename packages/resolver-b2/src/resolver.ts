/**
 * Checkpoint names to local files (seed 002): an absolute path as it is, a
 * name from the cache, or else downloaded from the bucket into the cache;
 * `b2://` and `s3://` URIs likewise.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rm, stat } from 'node:fs/promises';
import { basename, isAbsolute, join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import type { CheckpointEvents, EventSink } from '@ckpt/core';
import { CkptError, IntegrityError, InvalidArgumentError, NetworkError, NotFoundError, VetoedError } from '@ckpt/core';
import { type FileLock, lockFile, type ProgressCallback, renameDurably, tempPathFor } from '@ckpt/native';
import { Cache, checkName, LOCK_FOLDER } from './cache.js';
import { makeClient } from './client.js';
import { type BucketConfig, type Credentials, type ResolverConfig, resolverConfig } from './config.js';
import { downloadObject, headObject, type ObjectInfo, type TransferOptions } from './transfer.js';
import { type UploadOptions, type UploadResult, uploadFile } from './upload.js';

/**
 * Settings in code: usually `loadSettings().resolver` from @ckpt/core, which
 * reads flags, the environment and config files; what is missing takes its
 * default. The resolver itself reads no environment and no file.
 */
export interface ResolverOptions extends TransferOptions {
  cacheDir?: string;
  offline?: boolean;
  bucket?: Partial<BucketConfig>;
  /** For a private bucket: usually `loadCredentials()` from @ckpt/core. Without them, requests are anonymous. */
  credentials?: Credentials;
  /** Receives the before/after download and upload events. */
  hooks?: EventSink<CheckpointEvents>;
  /** How long to wait for another process downloading the same file before downloading anyway (default 10 min). */
  lockTimeoutMs?: number;
  /** An S3 client of your own (tests, custom middleware); otherwise one is made from the config. */
  client?: S3Client;
}

export interface ResolveOptions {
  onProgress?: ProgressCallback;
  /** Re-hash a cached file against its record before returning it (default false). */
  verify?: boolean;
}

interface Location {
  bucket: string;
  key: string;
  /** The file's name in the cache. */
  name: string;
}

/** `b2://bucket/key` or `s3://bucket/key`. */
export function parseUri(identifier: string): { bucket: string; key: string } | undefined {
  const match = /^(?:b2|s3):\/\/([^/]+)\/(.+)$/.exec(identifier);
  return match ? { bucket: match[1] as string, key: match[2] as string } : undefined;
}

export class Resolver {
  readonly config: ResolverConfig;
  readonly cache: Cache;
  readonly #options: ResolverOptions;
  #client: S3Client | undefined;

  constructor(options: ResolverOptions = {}) {
    for (const gone of ['env', 'configFile', 'fileSettings']) {
      if (Object.hasOwn(options, gone)) {
        throw new InvalidArgumentError(
          `Resolver no longer reads \`${gone}\`: it takes settings already resolved (flags > environment > files > defaults)`,
          {
            expected: "new Resolver({ ...loadSettings().resolver, credentials: loadCredentials() }) from '@ckpt/core'",
          },
        );
      }
    }
    this.#options = options;
    this.config = resolverConfig(options);
    this.cache = new Cache(this.config.cacheDir);
    this.#client = options.client;
  }

  get #s3(): S3Client {
    this.#client ??= makeClient(this.config.bucket, this.#options.credentials);
    return this.#client;
  }

  /**
   * A local path for `identifier`: an existing absolute path; a name found in
   * the cache; or, when the bucket is enabled and we are online, the object
   * `<prefix><name>` downloaded into the cache. Otherwise a NotFoundError
   * listing every place tried.
   */
  async resolve(identifier: string, options: ResolveOptions = {}): Promise<string> {
    if (typeof identifier !== 'string' || identifier === '') {
      throw new InvalidArgumentError('a checkpoint identifier must be a non-empty string');
    }
    const tried: string[] = [];
    const uri = parseUri(identifier);
    if (!uri && isAbsolute(identifier)) {
      if (existsSync(identifier)) return identifier;
      tried.push(identifier);
      throw this.#notFound(identifier, tried, 'an absolute path is used as it is');
    }
    const location: Location = uri
      ? { ...uri, name: checkName(`${uri.bucket}/${uri.key}`) }
      : {
          bucket: this.config.bucket.name,
          key: this.config.bucket.prefix + checkName(identifier),
          name: checkName(identifier),
        };
    const cached = this.cache.pathOf(location.name);
    tried.push(cached);
    if (existsSync(cached)) {
      if (options.verify) await this.#verifyCached(location.name, cached);
      await this.cache.touch(location.name).catch(() => undefined);
      return cached;
    }
    if (this.config.offline) throw this.#notFound(identifier, tried, 'offline mode: nothing is downloaded');
    if (!uri && !this.config.bucket.enabled) throw this.#notFound(identifier, tried, 'no bucket is enabled');
    tried.push(`s3://${location.bucket}/${location.key}`);
    return this.#download(identifier, location, tried, options);
  }

  /** Several identifiers (a hybrid model's pretrained files); each is downloaded at most once. */
  async resolveAll(identifiers: readonly string[], options: ResolveOptions = {}): Promise<string[]> {
    const unique = [...new Set(identifiers)];
    const paths = new Map<string, string>();
    await Promise.all(unique.map(async (id) => paths.set(id, await this.resolve(id, options))));
    return identifiers.map((id) => paths.get(id) as string);
  }

  #notFound(identifier: string, tried: string[], reason: string): NotFoundError {
    return new NotFoundError(
      `checkpoint ${JSON.stringify(identifier)} not found (${reason}); tried: ${tried.join(', ')}`,
      {
        path: identifier,
        expected: tried.join(' or '),
      },
    );
  }

  async #verifyCached(name: string, path: string): Promise<void> {
    const record = await this.cache.record(name);
    if (!record) return;
    const [entry] = (await this.cache.verify()).filter((e) => e.name === name);
    if (entry?.status === 'corrupted') {
      throw new IntegrityError(`the cached ${path} no longer matches its SHA-256`, {
        path,
        expected: record.sha256,
        found: entry.actual,
      });
    }
  }

  async #emit<K extends keyof CheckpointEvents & string>(event: K, context: CheckpointEvents[K]): Promise<void> {
    const result = await this.#options.hooks?.emit(event, context);
    if (result?.vetoed) throw new VetoedError(result.vetoed.hook, result.vetoed.reason, event);
  }

  async #download(identifier: string, location: Location, tried: string[], options: ResolveOptions): Promise<string> {
    const { bucket, key, name } = location;
    const destination = this.cache.pathOf(name);
    const info = await this.#head(bucket, key);
    if (!info) throw this.#notFound(identifier, tried, `s3://${bucket}/${key} does not exist`);
    await this.cache.prepare(name);
    await this.#emit('beforeDownload', { bucket, key, destination, size: info.size });
    // The lock only saves duplicate work: every download writes its own temporary and renames it.
    const lock = await this.#lock(name);
    try {
      if (existsSync(destination)) return destination; // another process fetched it while we waited
      const temp = tempPathFor(destination);
      let sha256: string;
      try {
        sha256 = await downloadObject(this.#s3, bucket, key, info, temp, {
          ...this.#options,
          ...(options.onProgress ? { onProgress: options.onProgress } : {}),
        });
        await renameDurably(temp, destination, { fsync: true });
      } catch (error) {
        await rm(temp, { force: true });
        throw this.#wrap(error, bucket, key);
      }
      await this.cache.remember(name, {
        source: `s3://${bucket}/${key}`,
        size: info.size,
        sha256,
        ...(info.etag ? { etag: info.etag } : {}),
        ...(info.versionId ? { versionId: info.versionId } : {}),
        downloadedAt: new Date().toISOString(),
      });
      await this.#emit('afterDownload', { bucket, key, path: destination, size: info.size, sha256 });
      return destination;
    } finally {
      lock?.release();
    }
  }

  async #head(bucket: string, key: string): Promise<ObjectInfo | undefined> {
    try {
      return await headObject(this.#s3, bucket, key, this.#options);
    } catch (error) {
      throw this.#wrap(error, bucket, key);
    }
  }

  /** SDK errors as ckpt errors that say what failed (never with credentials in them). */
  #wrap(error: unknown, bucket: string, key: string): unknown {
    if (error instanceof CkptError) return error;
    const code = (error as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
    if (code === 403 || code === 401) {
      return new NetworkError(`access to s3://${bucket}/${key} was refused (HTTP ${code}): check the key id and key`, {
        code: 'CKPT_ACCESS_DENIED',
        cause: error,
      });
    }
    return new NetworkError(`s3://${bucket}/${key}: ${(error as Error)?.message ?? String(error)}`, { cause: error });
  }

  async #lock(name: string): Promise<FileLock | undefined> {
    const folder = join(this.config.cacheDir, LOCK_FOLDER);
    await mkdir(folder, { recursive: true });
    const path = join(folder, `${createHash('sha256').update(name).digest('hex').slice(0, 32)}.lock`);
    try {
      return await lockFile(path, { timeoutMs: this.#options.lockTimeoutMs ?? 600_000 });
    } catch (error) {
      if ((error as CkptError)?.code === 'CKPT_LOCKED') return undefined; // waited long enough: download anyway
      throw error;
    }
  }

  /** Uploads `path` to `key` (default: the bucket prefix + the file's name); skipped when the bucket already holds it. */
  async upload(path: string, key?: string, options: UploadOptions = {}): Promise<UploadResult> {
    if (this.config.offline) throw new NetworkError(`offline mode: not uploading ${path}`, { code: 'CKPT_OFFLINE' });
    const uri = key ? parseUri(key) : undefined;
    const bucket = uri?.bucket ?? this.config.bucket.name;
    if (!bucket)
      throw new InvalidArgumentError('no bucket to upload to', { expected: 'bucket.name, or an s3:// or b2:// key' });
    const objectKey = uri?.key ?? key ?? this.config.bucket.prefix + basename(path);
    await stat(path).catch(() => {
      throw new NotFoundError(`no file to upload at ${path}`, { path });
    });
    await this.#emit('beforeUpload', { path, bucket, key: objectKey });
    let result: UploadResult;
    try {
      result = await uploadFile(this.#s3, bucket, objectKey, path, { ...this.#options, ...options });
    } catch (error) {
      throw this.#wrap(error, bucket, objectKey);
    }
    await this.#emit('afterUpload', {
      path,
      bucket,
      key: objectKey,
      size: result.size,
      sha256: result.sha256,
      skipped: result.skipped,
    });
    return result;
  }

  /** Closes the S3 client's connections. */
  destroy(): void {
    this.#client?.destroy();
  }
}
