// Every public entry point of every package, type-checked in a consumer project
// (once with moduleResolution node16, once with bundler).
import * as cli from '@ckpt/cli';
import * as core from '@ckpt/core';
import * as hooks from '@ckpt/hooks';
import * as native from '@ckpt/native';
import * as resolver from '@ckpt/resolver-b2';
import * as pytorch from '@ckpt/storage-pytorch';
import * as safetensors from '@ckpt/storage-safetensors';
import * as testkit from '@ckpt/testkit';
import * as servers from '@ckpt/testkit/servers';
import * as mysql from '@ckpt/tracker-mysql';
import * as postgres from '@ckpt/tracker-postgres';
import * as sql from '@ckpt/tracker-sql';
import * as sqlite from '@ckpt/tracker-sqlite';
import * as ui from '@ckpt/ui';

export const modules = [
  cli,
  core,
  hooks,
  native,
  resolver,
  pytorch,
  safetensors,
  testkit,
  servers,
  mysql,
  postgres,
  sql,
  sqlite,
  ui,
];

// A few uses, so that the types are read, not only found.
const info: native.BackendInfo = native.getImplementation();
const backend: core.StorageBackend = safetensors.safetensors;
export const used: [string, string, number] = [info.kind, backend.name, core.DTYPES.length];
