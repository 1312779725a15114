import { open, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { ConflictError, InvalidArgumentError, NotFoundError, shown } from './errors.js';
import { DETECT_BYTES, type StorageBackend } from './storage.js';

/** The storage backends a consumer registered, by name, extension and content. */
export class StorageRegistry {
  readonly #backends = new Map<string, StorageBackend>();

  constructor(backends: Iterable<StorageBackend> = []) {
    for (const backend of backends) this.register(backend);
  }

  register(backend: StorageBackend): this {
    for (const key of ['name', 'extensions', 'dtypes', 'detect', 'save', 'load', 'inspect'] as const) {
      if (backend?.[key] === undefined) {
        throw new InvalidArgumentError(`a storage backend needs \`${key}\``, { found: shown(backend?.name) });
      }
    }
    if (this.#backends.has(backend.name)) {
      throw new ConflictError(`a storage backend named ${JSON.stringify(backend.name)} is already registered`);
    }
    this.#backends.set(backend.name, backend);
    return this;
  }

  unregister(name: string): boolean {
    return this.#backends.delete(name);
  }

  list(): StorageBackend[] {
    return [...this.#backends.values()];
  }

  has(name: string): boolean {
    return this.#backends.has(name);
  }

  get(name: string): StorageBackend {
    const backend = this.#backends.get(name);
    if (!backend) {
      throw new NotFoundError(`no storage backend named ${JSON.stringify(name)}`, {
        expected: `one of: ${[...this.#backends.keys()].join(', ') || '(none registered)'}`,
        found: name,
      });
    }
    return backend;
  }

  /** The backend whose extension ends the file name, the longest match winning. */
  forPath(path: string): StorageBackend | undefined {
    const name = basename(path).toLowerCase();
    let best: { backend: StorageBackend; length: number } | undefined;
    for (const backend of this.#backends.values()) {
      for (const ext of backend.extensions) {
        if (name.endsWith(ext.toLowerCase()) && ext.length > (best?.length ?? 0))
          best = { backend, length: ext.length };
      }
    }
    return best?.backend;
  }

  /** The backend that recognises the file's first bytes (or a folder's marker file's), or undefined. */
  async detect(path: string): Promise<StorageBackend | undefined> {
    if ((await stat(path)).isDirectory()) {
      for (const backend of this.list()) {
        if (!backend.folderMarker) continue;
        const header = await readHeader(join(path, backend.folderMarker)).catch(() => undefined);
        if (header && backend.detect(header)) return backend;
      }
      return undefined;
    }
    const header = await readHeader(path);
    return this.list().find((backend) => backend.detect(header));
  }

  /**
   * The backend for a file: by content when it can be read, else by
   * extension. NotFoundError says what was tried.
   */
  async resolve(path: string): Promise<StorageBackend> {
    const byContent = await this.detect(path).catch(() => undefined);
    const found = byContent ?? this.forPath(path);
    if (found) return found;
    const extensions = this.list().flatMap((b) => b.extensions);
    throw new NotFoundError(`no registered storage backend reads ${path}`, {
      path,
      expected: `content one of ${
        this.list()
          .map((b) => b.name)
          .join(', ') || '(none registered)'
      } recognises, or an extension in ${extensions.join(', ') || '(none)'}`,
    });
  }
}

async function readHeader(path: string): Promise<Uint8Array> {
  const handle = await open(path, 'r');
  try {
    const buffer = new Uint8Array(DETECT_BYTES);
    const { bytesRead } = await handle.read(buffer, 0, DETECT_BYTES, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}
