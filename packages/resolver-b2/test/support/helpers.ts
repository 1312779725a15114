import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, inject } from 'vitest';
import { Resolver, type ResolverOptions } from '../../src/index.js';

export const credentials = { accessKeyId: 'ckpt-test', secretAccessKey: 'ckpt-test-secret' };

export const root = mkdtempSync(join(tmpdir(), 'ckpt-resolver-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let counter = 0;
export function fresh(name: string): string {
  counter++;
  return join(root, `${name}-${counter}`);
}

/** A client straight to the server (no proxy), for setting up objects. */
export function directClient(): S3Client {
  return new S3Client({
    endpoint: inject('s3Endpoint'),
    region: 'us-east-1',
    forcePathStyle: true,
    credentials,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

export async function makeBucket(name: string): Promise<string> {
  await directClient().send(new CreateBucketCommand({ Bucket: name }));
  return name;
}

export async function putObject(bucket: string, key: string, body: Uint8Array, metadata?: Record<string, string>) {
  await directClient().send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, Metadata: metadata }));
}

export function randomFile(name: string, size: number): { path: string; bytes: Buffer } {
  const bytes = randomBytes(size);
  const dir = fresh('files');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return { path, bytes };
}

/** A resolver on `endpoint` (default the server itself) with a fresh cache, no environment. */
export function resolverFor(bucket: string, options: Partial<ResolverOptions> & { endpoint?: string } = {}): Resolver {
  const { endpoint, ...rest } = options;
  return new Resolver({
    cacheDir: fresh('cache'),
    bucket: {
      enabled: true,
      name: bucket,
      prefix: 'modelZoo/',
      endpoint: endpoint ?? inject('s3Endpoint'),
      forcePathStyle: true,
    },
    credentials,
    retryDelayMs: 20,
    ...rest,
  });
}
