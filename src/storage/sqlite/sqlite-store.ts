// The embedded driver: one SQLite file (WAL, synchronous=FULL) owned by this process alone.
//
//   kv(key, value, create_rev, mod_rev)                         the current state
//   log(rev, key, type, value, create_rev, prev_value, prev_mod_rev)   one row per revision, for watch
//   meta(name, value)                                           'compacted' → the compacted revision
//
// Writes are group-committed: every write that arrives before the next setImmediate joins one
// transaction, evaluated in arrival order (a failed compare-and-swap fails only its own write and
// takes no revision), and every caller is answered only after COMMIT returned, i.e. after the WAL
// was fsynced. Because this process is the only writer (the file is locked exclusively), watch events
// are published in-process straight after the commit; watch-from-revision replays the log table.
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  CompactedError, KeyExistsError, KeyNotFoundError, RevisionMismatchError,
  type KV, type ListOptions, type ListResult, type Store, type WatchCallbacks, type WatchEvent,
  type WatchEventType, type Watcher,
} from '../store.js';
import { compareCodePoints, prefixEndCodePoint } from '../keys.js';
import { WatchHub } from '../watch-hub.js';

export interface SqliteStoreOptions {
  /** how often automatic compaction runs, in ms (default 5 minutes; 0 disables it) */
  compactInterval?: number;
  /** automatic compaction keeps this many revisions of history (default 10000) */
  retainRevisions?: number;
}

/** counters for tests and benchmarks */
export interface SqliteStoreStats {
  /** write transactions committed (one per group commit) */
  transactions: number;
  /** writes that took a revision */
  writes: number;
}

const SCHEMA_VERSION = 1;
const TYPE_CODE: Record<WatchEventType, number> = { create: 0, update: 1, delete: 2 };

interface Row { value: string; create_rev: number; mod_rev: number }
interface KeyRow extends Row { key: string }
interface LogRow {
  rev: number; key: string; type: number; value: string | null;
  create_rev: number; prev_value: string | null; prev_mod_rev: number | null;
}

type Op =
  | { kind: 'create'; key: string; value: string; resolve(kv: KV): void; reject(e: unknown): void }
  | { kind: 'update'; key: string; value: string; expected: number; resolve(kv: KV): void; reject(e: unknown): void }
  | { kind: 'delete'; key: string; expected?: number; resolve(kv: KV): void; reject(e: unknown): void };

type Outcome = { ok: true; kv: KV; ev: WatchEvent } | { ok: false; err: Error };

export class SqliteStore implements Store {
  private readonly db: Database.Database;
  private readonly hub = new WatchHub();
  private rev: number;
  private compacted: number;
  private queue: Op[] = [];
  private flushTimer: NodeJS.Immediate | undefined;
  private compactTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly counters: SqliteStoreStats = { transactions: 0, writes: 0 };

  private readonly st: {
    get: Database.Statement<[string], Row>;
    listFrom: Database.Statement<[string, number], KeyRow>;
    listFromTo: Database.Statement<[string, string, number], KeyRow>;
    listAfter: Database.Statement<[string, number], KeyRow>;
    listAfterTo: Database.Statement<[string, string, number], KeyRow>;
    countFrom: Database.Statement<[string], { n: number }>;
    countFromTo: Database.Statement<[string, string], { n: number }>;
    insertKv: Database.Statement<[string, string, number, number]>;
    updateKv: Database.Statement<[string, number, string]>;
    deleteKv: Database.Statement<[string]>;
    insertLog: Database.Statement<[number, string, number, string | null, number, string | null, number | null]>;
    logFrom: Database.Statement<[number, string], LogRow>;
    logFromTo: Database.Statement<[number, string, string], LogRow>;
    deleteLog: Database.Statement<[number]>;
    setMeta: Database.Statement<[string, number]>;
  };

  /** open (creating it and its directory if needed) the database at path; ':memory:' works for tests */
  static open(path: string, opts: SqliteStoreOptions = {}): SqliteStore {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    const db = new Database(path, { timeout: 0 });
    try {
      // the exclusive lock makes this process the only writer, which in-process watch relies on;
      // it is taken by the first write below and held until close (or the process dies)
      db.pragma('locking_mode = EXCLUSIVE');
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      db.pragma('cache_size = -32000');
      db.exec('BEGIN IMMEDIATE; COMMIT');
      return new SqliteStore(db, opts);
    } catch (err) {
      db.close();
      if ((err as { code?: string }).code === 'SQLITE_BUSY') {
        throw new Error(`sqlite store ${path} is in use by another process`, { cause: err });
      }
      throw err;
    }
  }

  private constructor(db: Database.Database, opts: SqliteStoreOptions) {
    this.db = db;
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) {
      throw new Error(`sqlite store schema version ${version} is newer than this program understands (${SCHEMA_VERSION})`);
    }
    db.exec(`
      CREATE TABLE IF NOT EXISTS kv (
        key TEXT PRIMARY KEY, value TEXT NOT NULL, create_rev INTEGER NOT NULL, mod_rev INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS log (
        rev INTEGER PRIMARY KEY, key TEXT NOT NULL, type INTEGER NOT NULL, value TEXT,
        create_rev INTEGER NOT NULL, prev_value TEXT, prev_mod_rev INTEGER);
      CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
      PRAGMA user_version = ${SCHEMA_VERSION};
    `);
    const cols = 'key, value, create_rev, mod_rev';
    this.st = {
      get: db.prepare('SELECT value, create_rev, mod_rev FROM kv WHERE key = ?'),
      listFrom: db.prepare(`SELECT ${cols} FROM kv WHERE key >= ? ORDER BY key LIMIT ?`),
      listFromTo: db.prepare(`SELECT ${cols} FROM kv WHERE key >= ? AND key < ? ORDER BY key LIMIT ?`),
      listAfter: db.prepare(`SELECT ${cols} FROM kv WHERE key > ? ORDER BY key LIMIT ?`),
      listAfterTo: db.prepare(`SELECT ${cols} FROM kv WHERE key > ? AND key < ? ORDER BY key LIMIT ?`),
      countFrom: db.prepare('SELECT count(*) AS n FROM kv WHERE key >= ?'),
      countFromTo: db.prepare('SELECT count(*) AS n FROM kv WHERE key >= ? AND key < ?'),
      insertKv: db.prepare('INSERT INTO kv (key, value, create_rev, mod_rev) VALUES (?, ?, ?, ?)'),
      updateKv: db.prepare('UPDATE kv SET value = ?, mod_rev = ? WHERE key = ?'),
      deleteKv: db.prepare('DELETE FROM kv WHERE key = ?'),
      insertLog: db.prepare(
        'INSERT INTO log (rev, key, type, value, create_rev, prev_value, prev_mod_rev) VALUES (?, ?, ?, ?, ?, ?, ?)'),
      logFrom: db.prepare('SELECT * FROM log WHERE rev > ? AND key >= ? ORDER BY rev'),
      logFromTo: db.prepare('SELECT * FROM log WHERE rev > ? AND key >= ? AND key < ? ORDER BY rev'),
      deleteLog: db.prepare('DELETE FROM log WHERE rev <= ?'),
      setMeta: db.prepare('INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value'),
    };
    this.compacted = (db.prepare("SELECT value FROM meta WHERE name = 'compacted'").pluck().get() as number | undefined) ?? 0;
    const maxLog = (db.prepare('SELECT max(rev) FROM log').pluck().get() as number | null) ?? 0;
    // compaction may have removed every log row; the revision never goes below the compacted one
    this.rev = Math.max(maxLog, this.compacted);

    const interval = opts.compactInterval ?? 5 * 60_000;
    const retain = opts.retainRevisions ?? 10_000;
    if (interval > 0) {
      this.compactTimer = setInterval(() => {
        const target = this.rev - retain;
        if (!this.closed && target > this.compacted) this.compactSync(target);
      }, interval);
      this.compactTimer.unref();
    }
  }

  /** transactions and writes committed so far */
  get stats(): Readonly<SqliteStoreStats> {
    return { ...this.counters };
  }

  async get(key: string): Promise<KV | undefined> {
    this.open();
    const row = this.st.get.get(key);
    return row && toKV(key, row);
  }

  async list(prefix: string, opts: ListOptions = {}): Promise<ListResult> {
    this.open();
    const limit = opts.limit && opts.limit > 0 ? opts.limit : -1;
    const end = prefixEndCodePoint(prefix);
    let after: string | undefined;
    if (opts.startAfter !== undefined) {
      if (opts.startAfter.startsWith(prefix)) after = opts.startAfter;
      else if (compareCodePoints(opts.startAfter, prefix) > 0) return { items: [], revision: this.rev, more: false };
    }
    const fetch = limit < 0 ? -1 : limit + 1;
    const rows = after === undefined
      ? (end === undefined ? this.st.listFrom.all(prefix, fetch) : this.st.listFromTo.all(prefix, end, fetch))
      : (end === undefined ? this.st.listAfter.all(after, fetch) : this.st.listAfterTo.all(after, end, fetch));
    const more = limit > 0 && rows.length > limit;
    if (more) rows.length = limit;
    return { items: rows.map((r) => toKV(r.key, r)), revision: this.rev, more };
  }

  async count(prefix: string): Promise<number> {
    this.open();
    const end = prefixEndCodePoint(prefix);
    return (end === undefined ? this.st.countFrom.get(prefix) : this.st.countFromTo.get(prefix, end))!.n;
  }

  create(key: string, value: string): Promise<KV> {
    return this.enqueue((resolve, reject) => ({ kind: 'create', key, value, resolve, reject }), value);
  }

  update(key: string, value: string, expectedModRevision: number): Promise<KV> {
    return this.enqueue((resolve, reject) => ({ kind: 'update', key, value, expected: expectedModRevision, resolve, reject }), value);
  }

  delete(key: string, expectedModRevision?: number): Promise<KV> {
    return this.enqueue((resolve, reject) => ({ kind: 'delete', key, expected: expectedModRevision, resolve, reject }), '');
  }

  watch(prefix: string, fromRevision: number, cb: WatchCallbacks): Watcher {
    if (this.closed) return this.hub.failed(cb, new Error('store is closed'));
    if (!Number.isInteger(fromRevision) || fromRevision < 0) {
      return this.hub.failed(cb, new RangeError(`invalid watch revision ${fromRevision}`));
    }
    if (fromRevision === 0) return this.hub.add(prefix, this.rev, [], cb);
    if (fromRevision < this.compacted) return this.hub.failed(cb, new CompactedError(fromRevision, this.compacted));
    // read synchronously: no commit can land between this read and the registration below
    const end = prefixEndCodePoint(prefix);
    const rows = end === undefined ? this.st.logFrom.all(fromRevision, prefix) : this.st.logFromTo.all(fromRevision, prefix, end);
    return this.hub.add(prefix, fromRevision, rows.map(toEvent), cb);
  }

  async currentRevision(): Promise<number> {
    this.open();
    return this.rev;
  }

  async compactedRevision(): Promise<number> {
    this.open();
    return this.compacted;
  }

  async compact(revision: number): Promise<void> {
    this.open();
    if (revision > this.rev) throw new RangeError(`cannot compact to revision ${revision}: current revision is ${this.rev}`);
    this.compactSync(revision);
  }

  /** commits writes still queued, ends every watch, and closes the database */
  async close(): Promise<void> {
    if (this.closed) return;
    if (this.flushTimer) clearImmediate(this.flushTimer);
    this.flush();
    this.closed = true;
    if (this.compactTimer) clearInterval(this.compactTimer);
    this.hub.failAll(new Error('store is closed'));
    this.db.close();
  }

  private compactSync(revision: number): void {
    if (revision <= this.compacted) return;
    this.db.transaction(() => {
      this.st.deleteLog.run(revision);
      this.st.setMeta.run('compacted', revision);
    })();
    this.compacted = revision;
  }

  private enqueue(make: (resolve: (kv: KV) => void, reject: (e: unknown) => void) => Op, value: unknown): Promise<KV> {
    if (this.closed) return Promise.reject(new Error('store is closed'));
    if (typeof value !== 'string') return Promise.reject(new TypeError(`store values are strings, got ${typeof value}`));
    return new Promise<KV>((resolve, reject) => {
      this.queue.push(make(resolve, reject));
      this.flushTimer ??= setImmediate(() => this.flush());
    });
  }

  /** run every queued write in one transaction, then answer the callers and publish the events */
  private flush(): void {
    this.flushTimer = undefined;
    const ops = this.queue;
    if (ops.length === 0) return;
    this.queue = [];
    let outcomes: Outcome[];
    try {
      outcomes = this.runBatch(ops);
    } catch (err) {
      if (ops.length === 1) {
        ops[0].reject(err);
        return;
      }
      // something in the batch broke the transaction (an I/O error, an oversized value): retry each
      // write alone so that only the ones that fail by themselves are refused
      outcomes = [];
      for (const op of ops) {
        try {
          outcomes.push(...this.runBatch([op]));
        } catch (e) {
          outcomes.push({ ok: false, err: e instanceof Error ? e : new Error(String(e)) });
        }
      }
    }
    const events: WatchEvent[] = [];
    for (let i = 0; i < ops.length; i++) {
      const o = outcomes[i];
      if (o.ok) {
        events.push(o.ev);
        ops[i].resolve(o.kv);
      } else {
        ops[i].reject(o.err);
      }
    }
    if (events.length > 0) this.hub.publish(events);
  }

  /** one transaction; on success this.rev has advanced past every successful write */
  private runBatch(ops: Op[]): Outcome[] {
    const st = this.st;
    let next = this.rev;
    const outcomes: Outcome[] = [];
    this.db.transaction(() => {
      for (const op of ops) {
        const row = st.get.get(op.key);
        if (op.kind === 'create') {
          if (row) { outcomes.push({ ok: false, err: new KeyExistsError(op.key) }); continue; }
          const rev = ++next;
          st.insertKv.run(op.key, op.value, rev, rev);
          st.insertLog.run(rev, op.key, TYPE_CODE.create, op.value, rev, null, null);
          const kv = Object.freeze({ key: op.key, value: op.value, createRevision: rev, modRevision: rev });
          outcomes.push({ ok: true, kv, ev: Object.freeze({ type: 'create', kv, revision: rev }) });
          continue;
        }
        if (!row) { outcomes.push({ ok: false, err: new KeyNotFoundError(op.key) }); continue; }
        const prevKv = toKV(op.key, row);
        if (op.expected !== undefined && row.mod_rev !== op.expected) {
          outcomes.push({ ok: false, err: new RevisionMismatchError(op.key, prevKv) });
          continue;
        }
        const rev = ++next;
        if (op.kind === 'update') {
          st.updateKv.run(op.value, rev, op.key);
          st.insertLog.run(rev, op.key, TYPE_CODE.update, op.value, row.create_rev, row.value, row.mod_rev);
          const kv = Object.freeze({ key: op.key, value: op.value, createRevision: row.create_rev, modRevision: rev });
          outcomes.push({ ok: true, kv, ev: Object.freeze({ type: 'update', kv, prevKv, revision: rev }) });
        } else {
          st.deleteKv.run(op.key);
          st.insertLog.run(rev, op.key, TYPE_CODE.delete, null, row.create_rev, row.value, row.mod_rev);
          const kv = Object.freeze({ key: op.key, value: row.value, createRevision: row.create_rev, modRevision: rev });
          outcomes.push({ ok: true, kv, ev: Object.freeze({ type: 'delete', kv, prevKv, revision: rev }) });
        }
      }
    })();
    // COMMIT has returned: the batch is durable
    if (next > this.rev) {
      this.counters.transactions++;
      this.counters.writes += next - this.rev;
      this.rev = next;
    }
    return outcomes;
  }

  private open(): void {
    if (this.closed) throw new Error('store is closed');
  }
}

function toKV(key: string, row: Row): KV {
  return Object.freeze({ key, value: row.value, createRevision: row.create_rev, modRevision: row.mod_rev });
}

function toEvent(r: LogRow): WatchEvent {
  if (r.type === TYPE_CODE.create) {
    const kv = Object.freeze({ key: r.key, value: r.value as string, createRevision: r.create_rev, modRevision: r.rev });
    return Object.freeze({ type: 'create', kv, revision: r.rev });
  }
  const prevKv = Object.freeze({
    key: r.key, value: r.prev_value as string, createRevision: r.create_rev, modRevision: r.prev_mod_rev as number,
  });
  if (r.type === TYPE_CODE.update) {
    const kv = Object.freeze({ key: r.key, value: r.value as string, createRevision: r.create_rev, modRevision: r.rev });
    return Object.freeze({ type: 'update', kv, prevKv, revision: r.rev });
  }
  const kv = Object.freeze({ key: r.key, value: r.prev_value as string, createRevision: r.create_rev, modRevision: r.rev });
  return Object.freeze({ type: 'delete', kv, prevKv, revision: r.rev });
}
