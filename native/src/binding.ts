import { createRequire } from 'node:module';
import type * as Generated from '../binding/index.cjs';

export type Binding = typeof Generated;

const require = createRequire(import.meta.url);

/** Loads the Node-API binary built by `napi build`, or returns why it could not be loaded. */
export function loadBinding(): { binding: Binding; error?: undefined } | { binding?: undefined; error: unknown } {
  try {
    return { binding: require('../binding/index.cjs') as Binding };
  } catch (error) {
    return { error };
  }
}
