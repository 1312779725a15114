/**
 * Finds the Node-API binary: a path forced by `NAPI_RS_NATIVE_LIBRARY_PATH`,
 * else the prebuilt platform package (`@ckpt/native-linux-x64-gnu`, ...),
 * else a local build (`binding/ckpt-native.<platform>.node`, from `napi
 * build`). It says which it took, or everything it tried.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type * as Generated from '../binding/index.cjs';

export type Binding = typeof Generated;

/** Where the binary came from. */
export type BindingSource = 'platform-package' | 'local-build' | 'override';

const require = createRequire(import.meta.url);
const VERSION = (require('../package.json') as { version: string }).version;

/**
 * Whether this Linux runs on musl rather than glibc: `ldd` says so in its
 * text; else Node's report names the glibc it runs on, if any (network
 * details left out of the report: they can take seconds to gather).
 */
function isMusl(): boolean {
  try {
    return readFileSync('/usr/bin/ldd', 'utf8').includes('musl');
  } catch {
    if (process.report) (process.report as { excludeNetwork?: boolean }).excludeNetwork = true;
    const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
    return !report?.header?.glibcVersionRuntime;
  }
}

/** The napi-rs platform name of this machine, as in `@ckpt/native-<platform>`; undefined where none is built. */
export function platformName(
  platform: string = process.platform,
  arch: string = process.arch,
  musl: () => boolean = isMusl,
): string | undefined {
  if (platform === 'linux' && arch === 'x64') return musl() ? 'linux-x64-musl' : 'linux-x64-gnu';
  if (platform === 'linux' && arch === 'arm64') return musl() ? undefined : 'linux-arm64-gnu';
  if (platform === 'darwin' && (arch === 'x64' || arch === 'arm64')) return `darwin-${arch}`;
  if (platform === 'win32' && arch === 'x64') return 'win32-x64-msvc';
  return undefined;
}

export type LoadedBinding =
  | { binding: Binding; source: BindingSource; path: string; error?: undefined }
  | { binding?: undefined; error: Error };

/** A short reason from a failed `require` (its first line: Node's stack of requiring modules says nothing here). */
function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0] as string;
}

/** Loads the binary, trying the places in order; the error lists every place tried and why it failed. */
export function loadBinding(): LoadedBinding {
  const forced = process.env.NAPI_RS_NATIVE_LIBRARY_PATH;
  if (forced) {
    try {
      return { binding: require(forced) as Binding, source: 'override', path: forced };
    } catch (error) {
      return { error: new Error(`NAPI_RS_NATIVE_LIBRARY_PATH=${forced}: ${firstLine(error)}`, { cause: error }) };
    }
  }
  const platform = platformName();
  if (!platform) {
    return { error: new Error(`no prebuilt binary for ${process.platform}-${process.arch}, and no local build`) };
  }
  const tried: string[] = [];
  const packageName = `@ckpt/native-${platform}`;
  try {
    const packageVersion = (require(`${packageName}/package.json`) as { version: string }).version;
    if (packageVersion !== VERSION) {
      // The wrapper and the binary change together: another version may lack or change a function.
      tried.push(`${packageName} is version ${packageVersion}, not ${VERSION}`);
    } else {
      return { binding: require(packageName) as Binding, source: 'platform-package', path: packageName };
    }
  } catch (error) {
    tried.push(`${packageName}: ${firstLine(error)}`);
  }
  const local = `../binding/ckpt-native.${platform}.node`;
  try {
    return { binding: require(local) as Binding, source: 'local-build', path: require.resolve(local) };
  } catch (error) {
    tried.push(`local build binding/ckpt-native.${platform}.node: ${firstLine(error)}`);
  }
  return { error: new Error(tried.join('; ')) };
}
