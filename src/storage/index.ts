// Choosing a driver from an endpoint string, the way k3s takes --datastore-endpoint:
//   ''  or 'sqlite://'            SQLite at <dataDir>/db/state.db
//   'sqlite:///abs/path.db'       SQLite at that path (a relative path is taken from the working directory)
//   'memory://'                   in memory, gone when the process exits
// A query string may tune SQLite compaction: sqlite://?compactInterval=60000&retainRevisions=5000.
import { resolve, join } from 'node:path';
import type { Store } from './store.js';
import { MemoryStore } from './memory/memory-store.js';
import { SqliteStore, type SqliteStoreOptions } from './sqlite/sqlite-store.js';

export * from './store.js';
export { MemoryStore, type MemoryStoreOptions } from './memory/memory-store.js';
export { SqliteStore, type SqliteStoreOptions, type SqliteStoreStats } from './sqlite/sqlite-store.js';

export function openStore(endpoint: string, dataDir?: string): Store {
  const ep = endpoint.trim();
  if (ep === 'memory://' || ep === 'memory:') return new MemoryStore();
  if (ep === '' || ep.startsWith('sqlite:')) {
    const rest = ep.replace(/^sqlite:(\/\/)?/, '');
    const q = rest.indexOf('?');
    const path = q < 0 ? rest : rest.slice(0, q);
    const opts = q < 0 ? {} : sqliteOptions(ep, rest.slice(q + 1));
    if (path) return SqliteStore.open(resolve(path), opts);
    if (!dataDir) throw new Error(`storage endpoint "${endpoint}" names no database file and no data directory was given`);
    return SqliteStore.open(join(dataDir, 'db', 'state.db'), opts);
  }
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(ep)?.[1];
  if (scheme === 'etcd' || scheme === 'http' || scheme === 'https') {
    throw new Error(`storage endpoint "${endpoint}": the etcd driver is not built yet; use sqlite:// or memory://`);
  }
  throw new Error(`storage endpoint "${endpoint}": unknown scheme ${scheme ? `"${scheme}"` : '(none)'}; use sqlite://[/path/to/state.db] or memory://`);
}

function sqliteOptions(endpoint: string, query: string): SqliteStoreOptions {
  const opts: SqliteStoreOptions = {};
  for (const [name, raw] of new URLSearchParams(query)) {
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 0) throw new Error(`storage endpoint "${endpoint}": ${name} must be a whole number ≥ 0, got "${raw}"`);
    if (name === 'compactInterval') opts.compactInterval = n;
    else if (name === 'retainRevisions') opts.retainRevisions = n;
    else throw new Error(`storage endpoint "${endpoint}": unknown option "${name}" (known: compactInterval, retainRevisions)`);
  }
  return opts;
}
