/**
 * Names that come from an index, a journal or a manifest are hostile until
 * checked: a record id becomes a file name, a record's file is joined to the
 * experiment folder. These checks run before any name reaches a path.
 */

/** Why `name` is not a plain file name (no separators, no `..`, no NUL, not empty, not `.`), or undefined. */
export function plainNameProblem(name: unknown): string | undefined {
  if (typeof name !== 'string') return 'is not a string';
  if (name === '' || name === '.' || name === '..') return `is ${JSON.stringify(name)}, not a name`;
  if (name.includes('\0')) return 'holds a NUL character';
  if (name.includes('/') || name.includes('\\')) return 'holds a path separator';
  if (name.length > 255) return 'is longer than 255 characters';
  return undefined;
}

/** Why `file` is not a relative path of plain names inside its folder (`a.pt`, `epoch_1/model.pt`), or undefined. */
export function relativePathProblem(file: unknown): string | undefined {
  if (typeof file !== 'string') return 'is not a string';
  if (file.includes('\\')) return 'holds a backslash';
  if (file.startsWith('/')) return 'is an absolute path';
  // The common case, a file directly in the folder, splits nothing.
  const parts = file.includes('/') ? file.split('/') : [file];
  if (parts.length > 32) return 'is nested more than 32 folders deep';
  for (const part of parts) {
    const problem = plainNameProblem(part);
    if (problem) return `has a part that ${problem}`;
  }
  return undefined;
}
