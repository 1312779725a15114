/** Checking what callers pass to a bucket's checkpoints: locations, retention, save input, labels. */
import { randomBytes } from 'node:crypto';
import { InvalidArgumentError, shown } from '@ckpt/core';
import type { BucketCheckpointsOptions, BucketSaveInput } from './checkpoints.js';
import { isTag, MAX_DESCRIPTION, MAX_TAGS } from './index-object.js';

export function parseLocation(location: string): { bucket: string; prefix: string } {
  const match = /^(?:s3|b2):\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/.exec(location);
  if (!match) throw new InvalidArgumentError(`not a bucket location: ${location}`, { expected: 's3://bucket/prefix' });
  const prefix = (match[2] ?? '').replace(/\/*$/, '');
  if (prefix.split('/').some((part) => part === '..' || part === '.'))
    throw new InvalidArgumentError(`a bucket prefix cannot hold . or .. parts: ${location}`);
  return { bucket: match[1] as string, prefix: prefix ? `${prefix}/` : '' };
}

export function checkRetention(options: BucketCheckpointsOptions): void {
  const { keepLast, best } = options;
  if (keepLast !== undefined && (!Number.isSafeInteger(keepLast) || keepLast < 1))
    throw new InvalidArgumentError(`keepLast must be a whole number >= 1, got ${shown(keepLast)}`);
  if (
    best !== undefined &&
    (typeof best.monitor !== 'string' || best.monitor === '' || !['min', 'max'].includes(best.mode))
  )
    throw new InvalidArgumentError('best must be { monitor: a metric name, mode: "min" or "max" }');
}

export function checkTags(tags: readonly string[]): string[] {
  if (!Array.isArray(tags) || !tags.every(isTag))
    throw new InvalidArgumentError('tags must be non-empty strings of at most 200 characters');
  if (tags.length > MAX_TAGS) throw new InvalidArgumentError(`a checkpoint carries at most ${MAX_TAGS} tags`);
  return [...new Set(tags)];
}

export function checkDescription(description: string): void {
  if (typeof description !== 'string' || description.length > MAX_DESCRIPTION)
    throw new InvalidArgumentError(`a description is a string of at most ${MAX_DESCRIPTION} characters`);
}

/** The checkpoint's name: its step, the time and a random suffix (two writers never collide). */
export function newId(step: number): string {
  const time = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '_');
  return `checkpoint_step_${String(step).padStart(6, '0')}_${time}_${randomBytes(3).toString('hex')}`;
}

/** Checks a save's step, epoch, metrics, tags and description; returns its tags without repeats. */
export function checkSaveInput(input: BucketSaveInput): string[] {
  for (const [name, value] of [
    ['step', input.step],
    ['epoch', input.epoch ?? 0],
  ] as const) {
    if (!Number.isSafeInteger(value) || value < 0)
      throw new InvalidArgumentError(`${name} must be a whole number >= 0, got ${shown(value)}`);
  }
  // The index holds metrics as JSON numbers: NaN or a string would make it unreadable.
  for (const [name, value] of Object.entries(input.metrics ?? {})) {
    if (typeof value !== 'number' || !Number.isFinite(value))
      throw new InvalidArgumentError(`metric ${JSON.stringify(name)} must be a finite number, got ${shown(value)}`);
  }
  if (input.description !== undefined) checkDescription(input.description);
  return checkTags(input.tags ?? []);
}
