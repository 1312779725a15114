/**
 * Credentials for a bucket: B2_APPLICATION_KEY_ID / B2_APPLICATION_KEY, else
 * AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, else a credentials file
 * (CKPT_CREDENTIALS_FILE, default ~/.config/ckpt/credentials) holding
 * `key_id = ...` and `key = ...` lines (or JSON `{ "keyId", "key" }`).
 * Kept apart from `Settings`, which may be printed: a secret is never part
 * of a message or a log line.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { FormatError } from '../errors.js';

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
}

/** The credentials the environment gives, or undefined (anonymous access). */
export function loadCredentials(env: Record<string, string | undefined> = process.env): Credentials | undefined {
  if (env.B2_APPLICATION_KEY_ID && env.B2_APPLICATION_KEY) {
    return { accessKeyId: env.B2_APPLICATION_KEY_ID, secretAccessKey: env.B2_APPLICATION_KEY };
  }
  if (env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY) {
    return { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY };
  }
  const path = env.CKPT_CREDENTIALS_FILE ?? join(homedir(), '.config', 'ckpt', 'credentials');
  if (!existsSync(path)) return undefined;
  const text = readFileSync(path, 'utf8');
  const fail = () =>
    new FormatError(`the credentials file ${path} has no key_id and key`, {
      path,
      expected: 'lines `key_id = ...` and `key = ...`, or JSON { "keyId", "key" }',
    });
  if (text.trim().startsWith('{')) {
    let value: { keyId?: unknown; key?: unknown };
    try {
      value = JSON.parse(text);
    } catch {
      throw fail();
    }
    if (typeof value.keyId !== 'string' || typeof value.key !== 'string') throw fail();
    return { accessKeyId: value.keyId, secretAccessKey: value.key };
  }
  const fields = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const match = /^\s*([A-Za-z_]+)\s*[=:]\s*(.*?)\s*$/.exec(line);
    if (match) fields.set((match[1] as string).toLowerCase(), match[2] as string);
  }
  const id = fields.get('key_id') ?? fields.get('application_key_id') ?? fields.get('aws_access_key_id');
  const key = fields.get('key') ?? fields.get('application_key') ?? fields.get('aws_secret_access_key');
  if (!id || !key) throw fail();
  return { accessKeyId: id, secretAccessKey: key };
}
