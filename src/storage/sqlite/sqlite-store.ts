// The embedded driver: one SQLite file (WAL) owned by this process alone.
//
//   kv(key, value, create_rev, mod_rev)                         the current state
//   log(rev, key, type, value, create_rev, prev_value, prev_mod_rev)   one row per revision, for watch
//   meta(name, value)                                           'compacted' → the compacted revision
//
// Writes are group-committed: every write that arrives before the next setImmediate joins one
// transaction, evaluated in arrival order (a failed compare-and-swap fails only its own write and
// takes no revision). Because this process is the only writer (the file is locked exclusively), watch
// events are published in-process; watch-from-revision replays the log table.
//
// Durability without blocking the event loop. better-sqlite3 is synchronous, so with
// synchronous=FULL every COMMIT waited for the WAL's fsync on the API server's thread (2-10 ms here,
// during which no request was parsed or answered). Instead the connection runs with synchronous=NORMAL,
// under which a WAL-mode COMMIT only write()s its frames (SQLite still syncs the WAL before and the
// database after every checkpoint, and the WAL header when the WAL is reused), and the store fsyncs
// the WAL file itself on libuv's thread pool (fs.fsync on a descriptor of `<db>-wal`: fsync is per
// file, whichever descriptor asks). Only when that fsync has returned are the callers of the batches
// it covers answered and their events published, in revision order. Writes that arrive while an fsync
// is running are not committed yet: they gather and are committed in one transaction when it returns,
// then fsynced together (so batches stay as large as when the loop itself waited for the fsync).
//
// Nothing that is not yet durable is shown to anyone: a write's own caller, the watchers, reads
// (get/list/count answer once what they read is durable) and watch replay (which stops at the last
// published revision; later ones come live) all wait for the fsync. If the WAL file cannot be found
// the store falls back to synchronous=FULL (durable at COMMIT); if an fsync fails, the store fails
// every waiting write and closes, since what is on disk can no longer be known.
//
// A list at an older revision (ListOptions.revision, a consistent snapshot for paging) reads the
// current kv rows and undoes the log after that revision: for each key written since, the first
// log row after it tells the key's state then (a create: absent; an update or delete: prev_value,
// prev_mod_rev, create_rev). That read walks the log's primary key (rev) from the revision on and
// kv's key index, so it costs the writes since the snapshot plus the page; the plain list is
// unchanged. History goes back to the compacted revision: older snapshots throw CompactedError.
//
// Checkpoints (copying the WAL back into the database file) are the store's too, so that they do not
// stall the loop either: automatic checkpointing is off; after an fsync, once about 4 MB went into
// the WAL since the last one, the store checkpoints with synchronous=OFF (the WAL was just fsynced,
// so this only copies pages into the page cache) and fsyncs the database file on the thread pool.
// No transaction starts until that fsync returned, because the next one restarts the WAL over the
// frames just copied, which must not happen before the copy is on disk.
import Database from 'better-sqlite3';
import { closeSync, fsync, fsyncSync, mkdirSync, openSync, realpathSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  CompactedError, FutureRevisionError, KeyExistsError, KeyNotFoundError, RevisionMismatchError,
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
/** checkpoint once about this many bytes went into the WAL (SQLite's own default is 1000 pages) */
const CHECKPOINT_BYTES = 4 << 20;
const TYPE_CODE: Record<WatchEventType, number> = { create: 0, update: 1, delete: 2 };

interface Row { value: string; create_rev: number; mod_rev: number }
interface KeyRow extends Row { key: string }
/** the first log row after a snapshot revision for a key: its type tells whether the key existed then */
interface UndoRow { key: string; type: number; rev: number }
/** the key's state at the snapshot revision, from that row */
interface PrevRow { create_rev: number; prev_value: string | null; prev_mod_rev: number | null }
interface LogRow {
  rev: number; key: string; type: number; value: string | null;
  create_rev: number; prev_value: string | null; prev_mod_rev: number | null;
}

type Op =
  | { kind: 'create'; key: string; value: string; resolve(kv: KV): void; reject(e: unknown): void }
  | { kind: 'update'; key: string; value: string; expected: number; resolve(kv: KV): void; reject(e: unknown): void }
  | { kind: 'delete'; key: string; expected?: number; resolve(kv: KV): void; reject(e: unknown): void };

type Outcome = { ok: true; kv: KV; ev: WatchEvent } | { ok: false; err: Error };

/** a committed batch whose callers wait for the fsync that makes revision `upTo` durable */
interface Committed { ops: Op[]; outcomes: Outcome[]; upTo: number }
/** a read that is answered once revision `upTo` is durable */
interface ReadWaiter { upTo: number; resolve(): void; reject(e: unknown): void }

export class SqliteStore implements Store {
  private readonly db: Database.Database;
  private readonly hub = new WatchHub();
  /** the last durable revision, whose events are published (currentRevision) */
  private rev: number;
  /** the last committed revision (== rev unless an fsync is pending) */
  private committedRev: number;
  private compacted: number;
  /** `<db>-wal`, fsynced by the store after commits; undefined: COMMIT itself is durable */
  private walPath: string | undefined;
  private wal: { fd: number; ino: number } | undefined;
  /** batches committed and not yet durable, oldest first */
  private committed: Committed[] = [];
  private readWaiters: ReadWaiter[] = [];
  /** look at the WAL file's inode again before the next fsync (after a checkpoint) */
  private walRecheck = false;
  /** an fsync (of the WAL, or of the database after a checkpoint) is running: no commit starts */
  private syncing = false;
  /** the running fsync is the database file's, after a checkpoint */
  private checkpointing = false;
  /** descriptor of the database file, for the fsync after a checkpoint */
  private dbFd: number | undefined;
  /** about how many bytes went into the WAL since the last checkpoint */
  private walBytes = 0;
  private failed: Error | undefined;
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
    undoFrom: Database.Statement<[number, string], UndoRow>;
    undoFromTo: Database.Statement<[number, string, string], UndoRow>;
    prevAt: Database.Statement<[number], PrevRow>;
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
      const mode = db.pragma('journal_mode = WAL', { simple: true });
      // WAL: commits write, the store fsyncs (see the top of the file); anything else: COMMIT syncs
      const walPath = path !== ':memory:' && mode === 'wal' ? `${realpathSync(path)}-wal` : undefined;
      db.pragma(walPath ? 'synchronous = NORMAL' : 'synchronous = FULL');
      if (walPath) db.pragma('wal_autocheckpoint = 0'); // the store checkpoints (see the top of the file)
      db.pragma('cache_size = -32000');
      db.exec('BEGIN IMMEDIATE; COMMIT');
      return new SqliteStore(db, opts, walPath);
    } catch (err) {
      db.close();
      if ((err as { code?: string }).code === 'SQLITE_BUSY') {
        throw new Error(`sqlite store ${path} is in use by another process`, { cause: err });
      }
      throw err;
    }
  }

  private constructor(db: Database.Database, opts: SqliteStoreOptions, walPath: string | undefined) {
    this.db = db;
    this.walPath = walPath;
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
      // the first row after a revision for each key in a range (SQLite takes the bare column `type`
      // from the row where min(rev) is found): a range scan of the log's primary key from the
      // revision on; the values are read afterwards, by rev, only for the keys a page returns
      undoFrom: db.prepare('SELECT key, type, min(rev) AS rev FROM log WHERE rev > ? AND key >= ? GROUP BY key'),
      undoFromTo: db.prepare('SELECT key, type, min(rev) AS rev FROM log WHERE rev > ? AND key >= ? AND key < ? GROUP BY key'),
      prevAt: db.prepare('SELECT create_rev, prev_value, prev_mod_rev FROM log WHERE rev = ?'),
      deleteLog: db.prepare('DELETE FROM log WHERE rev <= ?'),
      setMeta: db.prepare('INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value'),
    };
    this.compacted = (db.prepare("SELECT value FROM meta WHERE name = 'compacted'").pluck().get() as number | undefined) ?? 0;
    const maxLog = (db.prepare('SELECT max(rev) FROM log').pluck().get() as number | null) ?? 0;
    // compaction may have removed every log row; the revision never goes below the compacted one
    this.rev = Math.max(maxLog, this.compacted);
    this.committedRev = this.rev;

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
    await this.durable();
    return row && toKV(key, row);
  }

  async list(prefix: string, opts: ListOptions = {}): Promise<ListResult> {
    this.open();
    if (opts.revision !== undefined && opts.revision !== 0) return this.listAt(prefix, opts, opts.revision);
    const limit = opts.limit && opts.limit > 0 ? opts.limit : -1;
    const end = prefixEndCodePoint(prefix);
    let after: string | undefined;
    if (opts.startAfter !== undefined) {
      if (opts.startAfter.startsWith(prefix)) after = opts.startAfter;
      else if (compareCodePoints(opts.startAfter, prefix) > 0) {
        const revision = this.committedRev;
        await this.durable();
        return { items: [], revision, more: false };
      }
    }
    const revision = this.committedRev;
    const fetch = limit < 0 ? -1 : limit + 1;
    const rows = after === undefined
      ? (end === undefined ? this.st.listFrom.all(prefix, fetch) : this.st.listFromTo.all(prefix, end, fetch))
      : (end === undefined ? this.st.listAfter.all(after, fetch) : this.st.listAfterTo.all(after, end, fetch));
    const more = limit > 0 && rows.length > limit;
    if (more) rows.length = limit;
    await this.durable();
    return { items: rows.map((r) => toKV(r.key, r)), revision, more };
  }

  /** list as of an older revision: the current rows with the log after revision undone (see the top) */
  private listAt(prefix: string, opts: ListOptions, revision: number): ListResult {
    if (!Number.isInteger(revision) || revision < 0) throw new RangeError(`invalid list revision ${revision}`);
    if (revision <= this.compacted) throw new CompactedError(revision, this.compacted);
    if (revision > this.rev) throw new FutureRevisionError(revision, this.rev);
    const end = prefixEndCodePoint(prefix);
    let after: string | undefined;
    if (opts.startAfter !== undefined) {
      if (opts.startAfter.startsWith(prefix)) after = opts.startAfter;
      else if (compareCodePoints(opts.startAfter, prefix) > 0) return { items: [], revision, more: false };
    }
    // everything below is read synchronously, so kv and log agree (both at committedRev, which may be
    // ahead of the durable revision: those rows are undone like any other written after `revision`)
    const lo = after ?? prefix;
    const undo = end === undefined ? this.st.undoFrom.all(revision, lo) : this.st.undoFromTo.all(revision, lo, end);
    const written = new Set<string>();
    /** keys that existed at `revision` and were written since, with the log row holding their state then */
    const old: UndoRow[] = [];
    for (const u of undo) {
      if (u.key === after) continue;
      written.add(u.key);
      if (u.type !== TYPE_CODE.create) old.push(u);
    }
    old.sort((a, b) => compareCodePoints(a.key, b.key));
    const limit = opts.limit && opts.limit > 0 ? opts.limit : Infinity;
    // merge the current rows (without the keys written since) with the keys that existed then, in key
    // order, reading current rows only as far as the page goes. The values of the old keys are read
    // after the iterator is closed (the connection runs one statement at a time).
    const rows = after === undefined
      ? (end === undefined ? this.st.listFrom.iterate(prefix, -1) : this.st.listFromTo.iterate(prefix, end, -1))
      : (end === undefined ? this.st.listAfter.iterate(after, -1) : this.st.listAfterTo.iterate(after, end, -1));
    const slots: (KV | UndoRow)[] = [];
    let j = 0;
    let more = false;
    for (const row of rows) {
      if (written.has(row.key)) continue;
      while (j < old.length && slots.length < limit && compareCodePoints(old[j].key, row.key) < 0) slots.push(old[j++]);
      if (slots.length >= limit) { more = true; break; }
      slots.push(toKV(row.key, row));
    }
    if (!more) {
      while (j < old.length && slots.length < limit) slots.push(old[j++]);
      more = j < old.length;
    }
    const items = slots.map((x): KV => {
      if (!('type' in x)) return x;
      const p = this.st.prevAt.get(x.rev)!;
      return Object.freeze({ key: x.key, value: p.prev_value as string, createRevision: p.create_rev, modRevision: p.prev_mod_rev as number });
    });
    return { items, revision, more };
  }

  async count(prefix: string): Promise<number> {
    this.open();
    const end = prefixEndCodePoint(prefix);
    const n = (end === undefined ? this.st.countFrom.get(prefix) : this.st.countFromTo.get(prefix, end))!.n;
    await this.durable();
    return n;
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
    if (this.closed) return this.hub.failed(cb, this.failed ?? new Error('store is closed'));
    if (!Number.isInteger(fromRevision) || fromRevision < 0) {
      return this.hub.failed(cb, new RangeError(`invalid watch revision ${fromRevision}`));
    }
    if (fromRevision === 0) return this.hub.add(prefix, this.rev, [], cb);
    if (fromRevision < this.compacted) return this.hub.failed(cb, new CompactedError(fromRevision, this.compacted));
    // read synchronously: no commit can be published between this read and the registration below.
    // Revisions committed but not yet durable are left out: they are published (live) after their fsync.
    const end = prefixEndCodePoint(prefix);
    const rows = end === undefined ? this.st.logFrom.all(fromRevision, prefix) : this.st.logFromTo.all(fromRevision, prefix, end);
    const published = rows.filter((r) => r.rev <= this.rev);
    return this.hub.add(prefix, fromRevision, published.map(toEvent), cb);
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
    this.flushTimer = undefined;
    try { this.checkpointDurable(); } catch (err) { this.fail(err); return; }
    this.flush(true);
    // answer everything committed so far, after one last (synchronous) fsync
    if (!this.failed && this.committedRev > this.rev) {
      try {
        if (this.wal) fsyncSync(this.wal.fd);
        this.release(this.committedRev);
      } catch (err) {
        this.fail(err);
      }
    }
    this.shutdown(new Error('store is closed'));
  }

  /** end the store: every waiting caller and watch gets err, the database is closed */
  private shutdown(err: Error): void {
    if (this.closed) return;
    this.closed = true;
    if (this.flushTimer) clearImmediate(this.flushTimer);
    if (this.compactTimer) clearInterval(this.compactTimer);
    for (const b of this.committed) for (const op of b.ops) op.reject(err);
    this.committed = [];
    for (const op of this.queue) op.reject(err);
    this.queue = [];
    for (const w of this.readWaiters) w.reject(err);
    this.readWaiters = [];
    this.hub.failAll(err);
    if (this.wal) { try { closeSync(this.wal.fd); } catch { /* already gone */ } this.wal = undefined; }
    if (this.dbFd !== undefined) { try { closeSync(this.dbFd); } catch { /* already gone */ } this.dbFd = undefined; }
    this.db.close();
  }

  /** an fsync failed: nothing since the last good one can be called durable */
  private fail(cause: unknown): void {
    const err = new Error(`sqlite store: fsync of the write-ahead log failed, the store is closed: ${(cause as Error)?.message ?? cause}`, { cause });
    this.failed = err;
    process.stderr.write(`${err.message}\n`);
    this.shutdown(err);
  }

  private compactSync(revision: number): void {
    if (revision <= this.compacted) return;
    try { this.checkpointDurable(); } catch (err) { this.fail(err); throw err; }
    this.db.transaction(() => {
      this.st.deleteLog.run(revision);
      this.st.setMeta.run('compacted', revision);
    })();
    this.compacted = revision;
  }

  private enqueue(make: (resolve: (kv: KV) => void, reject: (e: unknown) => void) => Op, value: unknown): Promise<KV> {
    if (this.closed) return Promise.reject(this.failed ?? new Error('store is closed'));
    if (typeof value !== 'string') return Promise.reject(new TypeError(`store values are strings, got ${typeof value}`));
    return new Promise<KV>((resolve, reject) => {
      this.queue.push(make(resolve, reject));
      this.flushTimer ??= setImmediate(() => this.flush());
    });
  }

  /** run every queued write in one transaction; its callers are answered once it is durable (sync()) */
  private flush(force = false): void {
    this.flushTimer = undefined;
    // while an fsync runs, writes gather in the queue and are committed together when it returns:
    // one transaction (a few WAL pages) for the lot rather than one per setImmediate
    if (this.syncing && !force) return;
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
    // every outcome, failures included (they may have read state that is not durable yet), waits for
    // the fsync that covers this commit
    this.committed.push({ ops, outcomes, upTo: this.committedRev });
    this.sync();
  }

  /** resolves once everything committed so far is durable (at once when it is) */
  private durable(): Promise<void> | undefined {
    if (this.committedRev === this.rev) return undefined;
    const upTo = this.committedRev;
    return new Promise<void>((resolve, reject) => {
      this.readWaiters.push({ upTo, resolve, reject });
    });
  }

  /** make everything committed durable: answer at once if COMMIT synced, else start an fsync */
  private sync(): void {
    if (this.closed || this.syncing || this.committed.length === 0) return;
    // nothing written since the last fsync (e.g. a batch of failed compare-and-swaps), or COMMIT synced
    if (this.committedRev === this.rev || !this.walPath) { this.release(this.committedRev); return; }
    let wal: { fd: number; ino: number };
    try {
      wal = this.walFile();
    } catch (err) {
      // no WAL where it should be: let COMMIT sync from now on, and make what was written durable now
      process.stderr.write(`sqlite store: cannot open ${this.walPath} (${(err as Error).message}); using synchronous=FULL\n`);
      this.walPath = undefined;
      this.db.pragma('synchronous = FULL');
      this.db.pragma('wal_autocheckpoint = 1000');
      try { this.db.exec('BEGIN IMMEDIATE; COMMIT'); this.db.pragma('wal_checkpoint(FULL)'); } catch (e) { this.fail(e); return; }
      this.release(this.committedRev);
      return;
    }
    this.syncing = true;
    const upTo = this.committedRev;
    fsync(wal.fd, (err) => {
      this.syncing = false;
      if (this.closed) return;
      if (err) { this.fail(err); return; }
      this.release(upTo);
      if (this.walBytes >= CHECKPOINT_BYTES) this.checkpoint();
      else this.resume();
    });
  }

  /** after an fsync: commit what gathered meanwhile (which starts the next fsync) */
  private resume(): void {
    if (this.queue.length > 0 && !this.flushTimer) this.flush();
    else this.sync();
  }

  /** a transaction is about to start outside the usual cycle (close, compaction): if a checkpoint's
   *  fsync is still running, make the database file durable now, since the transaction may restart
   *  the WAL over the frames that checkpoint copied */
  private checkpointDurable(): void {
    if (!this.checkpointing || this.dbFd === undefined) return;
    fsyncSync(this.dbFd);
    this.checkpointing = false; // the fsync running on the thread pool finds nothing left to do
  }

  /** copy the WAL into the database file (the WAL is fsynced: nothing is committed since), then fsync
   *  the database file; commits wait for that fsync (see the top of the file) */
  private checkpoint(): void {
    this.walBytes = 0;
    this.walRecheck = true;
    try {
      this.db.pragma('synchronous = OFF');
      try {
        this.db.pragma('wal_checkpoint(PASSIVE)');
      } finally {
        this.db.pragma('synchronous = NORMAL');
      }
      this.dbFd ??= openSync(this.walPath!.slice(0, -'-wal'.length), 'r');
    } catch (err) {
      this.fail(err);
      return;
    }
    this.syncing = true;
    this.checkpointing = true;
    fsync(this.dbFd, (err) => {
      this.syncing = false;
      this.checkpointing = false;
      if (this.closed) return;
      if (err) { this.fail(err); return; }
      this.resume();
    });
  }

  /** the WAL's descriptor, (re)opened if SQLite replaced the file; its directory is synced when it is new */
  private walFile(): { fd: number; ino: number } {
    // SQLite keeps the WAL file (it restarts it from the top after a checkpoint, it does not delete
    // it) while this connection is open, so its identity is checked once per checkpoint, not per fsync
    if (this.wal && !this.walRecheck) return this.wal;
    this.walRecheck = false;
    const path = this.walPath!;
    const ino = statSync(path).ino;
    if (this.wal?.ino === ino) return this.wal;
    if (this.wal) closeSync(this.wal.fd);
    this.wal = undefined;
    const fd = openSync(path, 'r');
    const dir = openSync(dirname(path), 'r');
    try { fsyncSync(dir); } finally { closeSync(dir); }
    this.wal = { fd, ino };
    return this.wal;
  }

  /** revision upTo is durable: answer the batches and reads it covers and publish their events, in order */
  private release(upTo: number): void {
    const done: Committed[] = [];
    while (this.committed.length > 0 && this.committed[0].upTo <= upTo) done.push(this.committed.shift()!);
    const events: WatchEvent[] = [];
    for (const b of done) {
      for (let i = 0; i < b.ops.length; i++) {
        const o = b.outcomes[i];
        if (o.ok) {
          events.push(o.ev);
          b.ops[i].resolve(o.kv);
        } else {
          b.ops[i].reject(o.err);
        }
      }
    }
    if (upTo > this.rev) this.rev = upTo;
    if (this.readWaiters.length > 0) {
      const ready = this.readWaiters.filter((w) => w.upTo <= upTo);
      this.readWaiters = this.readWaiters.filter((w) => w.upTo > upTo);
      for (const w of ready) w.resolve();
    }
    if (events.length > 0) this.hub.publish(events);
  }

  /** one transaction; on success this.committedRev has advanced past every successful write */
  private runBatch(ops: Op[]): Outcome[] {
    const st = this.st;
    let next = this.committedRev;
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
    // COMMIT has returned: the batch is written (durable once the WAL is fsynced, see sync())
    if (next > this.committedRev) {
      this.walBytes += 8192; // the pages of kv, log and the key index a transaction rewrites, about
      for (const op of ops) if (op.kind !== 'delete') this.walBytes += 2 * op.value.length;
      this.counters.transactions++;
      this.counters.writes += next - this.committedRev;
      this.committedRev = next;
    }
    return outcomes;
  }

  private open(): void {
    if (this.closed) throw this.failed ?? new Error('store is closed');
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
