// The suite every driver must pass. A driver's test file calls storeConformance(name, make); make
// returns a fresh, empty store for each test, and each test closes the store it made.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CompactedError, FutureRevisionError, KeyExistsError, KeyNotFoundError, RevisionMismatchError,
  type KV, type Store, type WatchEvent, type Watcher,
} from './store.js';

const DEADLINE_MS = 5000;

/** a watch that records what it is told, with a deadline-bounded wait */
class Recorder {
  readonly events: WatchEvent[] = [];
  readonly batches: WatchEvent[][] = [];
  error: Error | undefined;
  readonly watcher: Watcher;
  private wake: (() => void) | undefined;

  constructor(store: Store, prefix: string, fromRevision: number) {
    this.watcher = store.watch(prefix, fromRevision, {
      onEvents: (evs) => { this.batches.push(evs); this.events.push(...evs); this.wake?.(); },
      onError: (err) => { this.error = err; this.wake?.(); },
    });
  }

  revisions(): number[] {
    return this.events.map((e) => e.revision);
  }

  async until(what: string, cond: () => boolean): Promise<void> {
    const deadline = Date.now() + DEADLINE_MS;
    while (!cond()) {
      const left = deadline - Date.now();
      if (left <= 0) {
        assert.fail(`timed out waiting for ${what}; got revisions [${this.revisions().join(', ')}]` +
          (this.error ? `, error ${this.error.message}` : ''));
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.wake = () => { clearTimeout(t); resolve(); };
      });
      this.wake = undefined;
    }
  }

  /** wait until an event for key arrived */
  untilKey(key: string): Promise<void> {
    return this.until(`an event for ${key}`, () => this.events.some((e) => e.kv.key === key));
  }

  untilRevision(rev: number): Promise<void> {
    return this.until(`revision ${rev}`, () => this.events.some((e) => e.revision >= rev));
  }
}

function range(from: number, to: number): number[] {
  const out: number[] = [];
  for (let i = from; i <= to; i++) out.push(i);
  return out;
}

function plain(kv: KV | undefined): KV | undefined {
  return kv && { key: kv.key, value: kv.value, createRevision: kv.createRevision, modRevision: kv.modRevision };
}

export function storeConformance(name: string, make: () => Promise<Store> | Store): void {
  /** run body with a fresh store, closing it afterwards whatever happens */
  function it(title: string, body: (s: Store) => Promise<void>): void {
    test(title, async () => {
      const s = await make();
      try {
        await body(s);
      } finally {
        await s.close();
      }
    });
  }

  describe(`store conformance: ${name}`, () => {
    it('a new store is empty at revision 0', async (s) => {
      assert.equal(await s.currentRevision(), 0);
      assert.equal(await s.compactedRevision(), 0);
      assert.equal(await s.get('/a'), undefined);
      assert.deepEqual(await s.list(''), { items: [], revision: 0, more: false });
      assert.equal(await s.count(''), 0);
    });

    it('create stores the value at the next revision and get returns it', async (s) => {
      const kv = await s.create('/a', '{"x":1}');
      assert.deepEqual(plain(kv), { key: '/a', value: '{"x":1}', createRevision: 1, modRevision: 1 });
      assert.deepEqual(plain(await s.get('/a')), plain(kv));
      assert.equal(await s.currentRevision(), 1);
      // empty values and unicode survive the round trip
      const e = await s.create('/e', '');
      assert.equal((await s.get('/e'))?.value, '');
      assert.equal(e.modRevision, 2);
      await s.create('/u', 'héllo ☃ 𝄞');
      assert.equal((await s.get('/u'))?.value, 'héllo ☃ 𝄞');
    });

    it('create of an existing key throws KeyExistsError and changes nothing', async (s) => {
      const first = await s.create('/a', 'one');
      await assert.rejects(s.create('/a', 'two'), (err: unknown) => {
        assert.ok(err instanceof KeyExistsError);
        assert.equal(err.key, '/a');
        return true;
      });
      assert.deepEqual(plain(await s.get('/a')), plain(first));
      assert.equal(await s.currentRevision(), first.modRevision);
    });

    it('update with the current modRevision replaces the value and keeps createRevision', async (s) => {
      const a = await s.create('/a', 'one');
      await s.create('/b', 'other');
      const u = await s.update('/a', 'two', a.modRevision);
      assert.deepEqual(plain(u), { key: '/a', value: 'two', createRevision: a.createRevision, modRevision: 3 });
      assert.deepEqual(plain(await s.get('/a')), plain(u));
      const u2 = await s.update('/a', 'three', u.modRevision);
      assert.equal(u2.modRevision, 4);
      assert.equal(u2.createRevision, 1);
    });

    it('update with a stale modRevision throws RevisionMismatchError carrying the current KV', async (s) => {
      const a = await s.create('/a', 'one');
      const u = await s.update('/a', 'two', a.modRevision);
      await assert.rejects(s.update('/a', 'three', a.modRevision), (err: unknown) => {
        assert.ok(err instanceof RevisionMismatchError);
        assert.equal(err.key, '/a');
        assert.deepEqual(plain(err.current), plain(u));
        return true;
      });
      assert.equal((await s.get('/a'))?.value, 'two');
      assert.equal(await s.currentRevision(), u.modRevision);
    });

    it('update of a missing key throws KeyNotFoundError', async (s) => {
      await assert.rejects(s.update('/nope', 'x', 1), (err: unknown) => err instanceof KeyNotFoundError && err.key === '/nope');
      assert.equal(await s.currentRevision(), 0);
      assert.equal(await s.get('/nope'), undefined);
    });

    it('delete without a revision removes the key and returns its last value at the delete revision', async (s) => {
      const a = await s.create('/a', 'one');
      const u = await s.update('/a', 'two', a.modRevision);
      const d = await s.delete('/a');
      assert.deepEqual(plain(d), { key: '/a', value: 'two', createRevision: a.createRevision, modRevision: u.modRevision + 1 });
      assert.equal(await s.get('/a'), undefined);
      assert.equal(await s.count(''), 0);
      assert.equal(await s.currentRevision(), d.modRevision);
      // a key created again starts a new life
      const again = await s.create('/a', 'new');
      assert.equal(again.createRevision, d.modRevision + 1);
      await assert.rejects(s.delete('/missing'), (err: unknown) => err instanceof KeyNotFoundError && err.key === '/missing');
    });

    it('delete with a revision is a compare-and-swap', async (s) => {
      const a = await s.create('/a', 'one');
      const u = await s.update('/a', 'two', a.modRevision);
      await assert.rejects(s.delete('/a', a.modRevision), (err: unknown) => {
        assert.ok(err instanceof RevisionMismatchError);
        assert.deepEqual(plain(err.current), plain(u));
        return true;
      });
      assert.equal((await s.get('/a'))?.value, 'two');
      assert.equal(await s.currentRevision(), u.modRevision);
      const d = await s.delete('/a', u.modRevision);
      assert.equal(d.modRevision, u.modRevision + 1);
      assert.equal(await s.get('/a'), undefined);
      await assert.rejects(s.delete('/a', d.modRevision), (err: unknown) => err instanceof KeyNotFoundError);
    });

    it('list returns exactly the keys under the prefix, in key order', async (s) => {
      const keys = ['/a/y/z', '/a0', '/a', '/b', '/a/', '/a/x', '/a.', '/a/~', '/a/é', '/a/☃', '/ab/c', ''];
      for (const k of keys) await s.create(k, `v${k}`);
      const under = (p: string) => keys.filter((k) => k.startsWith(p)).sort();
      for (const prefix of ['/a/', '/a', '/a/y/', '/b', '/c', '/a/x', '']) {
        const r = await s.list(prefix);
        assert.deepEqual(r.items.map((kv) => kv.key), under(prefix), `list("${prefix}")`);
        assert.equal(r.more, false);
        assert.equal(r.revision, keys.length);
        assert.equal(await s.count(prefix), under(prefix).length, `count("${prefix}")`);
        for (const kv of r.items) assert.equal(kv.value, `v${kv.key}`);
      }
    });

    it('list pages with startAfter and limit, reporting more', async (s) => {
      const keys: string[] = [];
      for (let i = 0; i < 25; i++) keys.push(`/p/${String(i).padStart(2, '0')}`);
      for (const k of [...keys, '/o', '/p0', '/p']) await s.create(k, k);
      const rev = await s.currentRevision();
      const pages: string[][] = [];
      let startAfter: string | undefined;
      for (;;) {
        const r = await s.list('/p/', { limit: 10, startAfter });
        assert.equal(r.revision, rev);
        pages.push(r.items.map((kv) => kv.key));
        if (!r.more) break;
        startAfter = r.items[r.items.length - 1].key;
      }
      assert.deepEqual(pages.map((p) => p.length), [10, 10, 5]);
      assert.deepEqual(pages.flat(), keys);
      // a limit that ends exactly on the last key reports no more
      assert.equal((await s.list('/p/', { limit: 5, startAfter: '/p/19' })).more, false);
      assert.equal((await s.list('/p/', { limit: 25 })).more, false);
      assert.equal((await s.list('/p/', { limit: 24 })).more, true);
      // startAfter need not be a stored key
      assert.deepEqual((await s.list('/p/', { limit: 2, startAfter: '/p/10x' })).items.map((kv) => kv.key), ['/p/11', '/p/12']);
      // before the prefix: from the start; after it: nothing
      assert.deepEqual((await s.list('/p/', { limit: 1, startAfter: '/o' })).items.map((kv) => kv.key), ['/p/00']);
      assert.deepEqual(await s.list('/p/', { startAfter: '/q' }), { items: [], revision: rev, more: false });
      assert.deepEqual((await s.list('/p/', { startAfter: '/p/' })).items.length, 25);
      assert.deepEqual((await s.list('/p/', { limit: 0 })).items.length, 25);
    });

    it('list at a revision shows the keys as they were then: later creates, updates and deletes are invisible', async (s) => {
      const a = await s.create('/s/a', 'a1');        // 1
      const b = await s.create('/s/b', 'b1');        // 2
      const c = await s.create('/s/c', 'c1');        // 3
      await s.create('/s/gone', 'g');                // 4
      await s.delete('/s/gone');                     // 5 (deleted before the snapshot: absent from it)
      const snap = await s.currentRevision();        // 5
      await s.update('/s/a', 'a2', a.modRevision);   // 6
      await s.delete('/s/b');                        // 7
      await s.create('/s/b', 'b2');                  // 8 (a new life of /s/b)
      await s.create('/s/aa', 'new');                // 9
      const c2 = await s.update('/s/c', 'c2', c.modRevision); // 10
      await s.delete('/s/c', c2.modRevision);        // 11
      await s.create('/t/outside', 'x');             // 12
      const now = (await s.list('/s/')).items.map((kv) => [kv.key, kv.value]);
      assert.deepEqual(now, [['/s/a', 'a2'], ['/s/aa', 'new'], ['/s/b', 'b2']]);

      const r = await s.list('/s/', { revision: snap });
      assert.equal(r.revision, snap);
      assert.equal(r.more, false);
      assert.deepEqual(r.items.map(plain), [plain(a), plain(b), plain(c)]);
      // paging through the snapshot, one key at a time
      const keys: string[] = [];
      let startAfter: string | undefined;
      for (;;) {
        const p = await s.list('/s/', { revision: snap, limit: 1, startAfter });
        assert.equal(p.revision, snap);
        keys.push(...p.items.map((kv) => kv.key));
        if (!p.more) break;
        startAfter = p.items[p.items.length - 1].key;
      }
      assert.deepEqual(keys, ['/s/a', '/s/b', '/s/c']);
      assert.deepEqual((await s.list('/s/', { revision: snap, limit: 2, startAfter: '/s/a' })).items.map((kv) => kv.value), ['b1', 'c1']);
      assert.deepEqual(await s.list('/s/', { revision: snap, startAfter: '/s/c' }), { items: [], revision: snap, more: false });
      assert.deepEqual(await s.list('/s/', { revision: snap, startAfter: '/z' }), { items: [], revision: snap, more: false });
      // an intermediate revision; the current one (same as no revision); 0 means now
      assert.deepEqual((await s.list('/s/', { revision: 8 })).items.map((kv) => [kv.key, kv.value, kv.createRevision, kv.modRevision]),
        [['/s/a', 'a2', 1, 6], ['/s/b', 'b2', 8, 8], ['/s/c', 'c1', 3, 3]]);
      const cur = await s.currentRevision();
      assert.deepEqual((await s.list('/s/', { revision: cur })).items.map((kv) => [kv.key, kv.value]), now);
      assert.equal((await s.list('/s/', { revision: 0 })).revision, cur);
      assert.deepEqual((await s.list('', { revision: 4 })).items.map((kv) => kv.key), ['/s/a', '/s/b', '/s/c', '/s/gone']);
    });

    it('list at every revision, paged, matches the state recorded at that revision', async (s) => {
      // a deterministic mix of writes over a few keys; after each, the full list is the oracle
      const names = ['/m/a', '/m/b', '/m/c', '/m/d', '/m/e', '/m/é', '/m0', '/l'];
      const states = new Map<number, string[]>();
      const show = (kvs: readonly KV[]) => kvs.map((kv) => `${kv.key}=${kv.value}@${kv.createRevision}/${kv.modRevision}`);
      let seed = 7;
      const rnd = (n: number) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
      for (let step = 0; step < 60; step++) {
        const key = names[rnd(names.length)];
        const cur = await s.get(key);
        if (!cur) await s.create(key, `v${step}`);
        else if (rnd(3) === 0) await s.delete(key);
        else await s.update(key, `v${step}`, cur.modRevision);
        const r = await s.list('/m/');
        states.set(r.revision, show(r.items));
      }
      const last = await s.currentRevision();
      assert.equal(last, 60);
      for (const [rev, want] of states) {
        assert.deepEqual(show((await s.list('/m/', { revision: rev })).items), want, `list at ${rev}`);
        for (const limit of [1, 2, 3]) {
          const got: KV[] = [];
          let startAfter: string | undefined;
          for (let pages = 0; ; pages++) {
            assert.ok(pages <= want.length, `paging at ${rev} does not end`);
            const p = await s.list('/m/', { revision: rev, limit, startAfter });
            assert.ok(p.items.length <= limit);
            got.push(...p.items);
            if (!p.more) break;
            assert.equal(p.items.length, limit);
            startAfter = p.items[p.items.length - 1].key;
          }
          assert.deepEqual(show(got), want, `list at ${rev}, limit ${limit}`);
        }
      }
    });

    it('list at a compacted revision throws CompactedError; at a future one FutureRevisionError', async (s) => {
      const a = await s.create('/k/a', 'a1');        // 1
      await s.create('/k/b', 'b1');                  // 2
      await s.update('/k/a', 'a2', a.modRevision);   // 3
      await s.delete('/k/b');                        // 4
      await s.create('/k/c', 'c1');                  // 5
      assert.deepEqual((await s.list('/k/', { revision: 2 })).items.map((kv) => kv.value), ['a1', 'b1']);
      await s.compact(3);
      for (const rev of [1, 2, 3]) {
        await assert.rejects(s.list('/k/', { revision: rev }), (err: unknown) => {
          assert.ok(err instanceof CompactedError, `got ${err}`);
          assert.equal(err.requested, rev);
          assert.equal(err.compacted, 3);
          return true;
        });
      }
      // after the compacted revision the snapshot is still whole
      assert.deepEqual((await s.list('/k/', { revision: 4 })).items.map((kv) => kv.value), ['a2']);
      assert.deepEqual((await s.list('/k/', { revision: 5, limit: 1 })).items.map((kv) => kv.value), ['a2']);
      await assert.rejects(s.list('/k/', { revision: 6 }), (err: unknown) => {
        assert.ok(err instanceof FutureRevisionError, `got ${err}`);
        assert.equal(err.requested, 6);
        assert.equal(err.current, 5);
        return true;
      });
      await assert.rejects(s.list('/k/', { revision: -1 }), RangeError);
      await assert.rejects(s.list('/k/', { revision: 4.5 }), RangeError);
      // the plain list is unaffected
      assert.deepEqual((await s.list('/k/')).items.map((kv) => kv.value), ['a2', 'c1']);
    });

    it('revisions are global across keys and increase by one per write', async (s) => {
      const seen: number[] = [];
      const a = await s.create('/a', '1'); seen.push(a.modRevision);
      const b = await s.create('/b', '1'); seen.push(b.modRevision);
      seen.push((await s.update('/a', '2', a.modRevision)).modRevision);
      seen.push((await s.delete('/b')).modRevision);
      seen.push((await s.create('/c', '1')).modRevision);
      await assert.rejects(s.create('/c', 'dup'));
      seen.push((await s.create('/d', '1')).modRevision);
      assert.deepEqual(seen, range(1, 6));
      assert.equal(await s.currentRevision(), 6);
      assert.equal((await s.list('')).revision, 6);
    });

    it('watch from 0 delivers only writes made after it started', async (s) => {
      await s.create('/w/old', 'x');
      const r = new Recorder(s, '/w/', 0);
      const c = await s.create('/w/new', 'v1');
      const u = await s.update('/w/new', 'v2', c.modRevision);
      const d = await s.delete('/w/new');
      await r.untilRevision(d.modRevision);
      r.watcher.stop();
      assert.deepEqual(r.events.map((e) => [e.type, e.kv.key, e.revision]), [
        ['create', '/w/new', c.modRevision], ['update', '/w/new', u.modRevision], ['delete', '/w/new', d.modRevision],
      ]);
      const [ec, eu, ed] = r.events;
      assert.deepEqual(plain(ec.kv), plain(c));
      assert.equal(ec.prevKv, undefined);
      assert.deepEqual(plain(eu.kv), plain(u));
      assert.deepEqual(plain(eu.prevKv), plain(c));
      assert.deepEqual(plain(ed.kv), plain(d));
      assert.equal(ed.kv.modRevision, ed.revision);
      assert.deepEqual(plain(ed.prevKv), plain(u));
      assert.equal(r.error, undefined);
    });

    it('watch from an old revision replays history, then continues live with no gap or duplicate', async (s) => {
      const a = await s.create('/h/a', 'a1');        // 1
      const b = await s.create('/h/b', 'b1');        // 2
      await s.create('/x/other', 'o');               // 3 (outside the prefix)
      const a2 = await s.update('/h/a', 'a2', a.modRevision); // 4
      await s.delete('/h/b');                         // 5
      const r = new Recorder(s, '/h/', a.modRevision);
      const c = await s.create('/h/c', 'c1');        // 6
      await s.create('/x/other2', 'o');              // 7
      const a3 = await s.update('/h/a', 'a3', a2.modRevision); // 8
      await r.untilRevision(a3.modRevision);
      r.watcher.stop();
      assert.deepEqual(r.events.map((e) => [e.type, e.kv.key, e.revision]), [
        ['create', '/h/b', 2], ['update', '/h/a', 4], ['delete', '/h/b', 5], ['create', '/h/c', 6], ['update', '/h/a', 8],
      ]);
      const del = r.events[2];
      assert.deepEqual(plain(del.kv), { key: '/h/b', value: 'b1', createRevision: b.createRevision, modRevision: 5 });
      assert.deepEqual(plain(del.prevKv), plain(b));
      assert.deepEqual(plain(r.events[1].prevKv), plain(a));
      assert.deepEqual(plain(r.events[3].kv), plain(c));
      for (const batch of r.batches) {
        for (let i = 1; i < batch.length; i++) assert.ok(batch[i].revision > batch[i - 1].revision);
      }
    });

    it('watch started while writes are in flight sees every revision exactly once', async (s) => {
      const first = await Promise.all(range(1, 30).map((i) => s.create(`/f/${i}`, 'x')));
      const from = first[9].modRevision;
      const pending = range(31, 60).map((i) => s.create(`/f/${i}`, 'x'));
      const r = new Recorder(s, '/f/', from);
      const rest = await Promise.all(pending);
      const last = Math.max(...rest.map((kv) => kv.modRevision));
      await r.untilRevision(last);
      r.watcher.stop();
      assert.deepEqual(r.revisions(), range(from + 1, last));
    });

    it('watch delivers only keys under its prefix', async (s) => {
      const r = new Recorder(s, '/a/', 0);
      await s.create('/a0', 'x');
      await s.create('/a', 'x');
      await s.create('/b/a/', 'x');
      await s.create('/a/sentinel', 'x');
      await r.untilKey('/a/sentinel');
      r.watcher.stop();
      assert.deepEqual(r.events.map((e) => e.kv.key), ['/a/sentinel']);
      const all = new Recorder(s, '', 1);
      await all.untilRevision(4);
      all.watcher.stop();
      assert.deepEqual(all.events.map((e) => e.kv.key), ['/a', '/b/a/', '/a/sentinel']);
    });

    it('a stopped watcher receives nothing more; stop is idempotent', async (s) => {
      const stopped = new Recorder(s, '/s/', 0);
      const early = new Recorder(s, '/s/', 0);
      early.watcher.stop();
      const c1 = await s.create('/s/1', 'x');
      await stopped.untilKey('/s/1');
      stopped.watcher.stop();
      stopped.watcher.stop();
      // a watcher that sees the next write proves that write was published to every watcher
      const barrier = new Recorder(s, '/s/', 0);
      await s.create('/s/2', 'x');
      await barrier.untilKey('/s/2');
      barrier.watcher.stop();
      assert.deepEqual(stopped.revisions(), [c1.modRevision]);
      assert.deepEqual(early.events, []);
      assert.equal(stopped.error, undefined);
      assert.equal(early.error, undefined);
    });

    it('a watch stopped before its replay is delivered receives nothing', async (s) => {
      await s.create('/r/1', 'x');
      await s.create('/r/2', 'x');
      const r = new Recorder(s, '/r/', 1);
      r.watcher.stop();
      const barrier = new Recorder(s, '/r/', 1);
      await barrier.untilRevision(2);
      await s.create('/r/3', 'x');
      await barrier.untilRevision(3);
      barrier.watcher.stop();
      assert.deepEqual(r.events, []);
    });

    it('compact forgets history: older watches fail with CompactedError, current state stays readable', async (s) => {
      const keep = await s.create('/c/keep', 'k');           // 1
      const a = await s.create('/c/a', 'a1');                // 2
      await s.update('/c/a', 'a2', a.modRevision);           // 3
      await s.create('/c/b', 'b1');                          // 4
      await s.delete('/c/b');                                // 5
      await s.compact(3);
      assert.equal(await s.compactedRevision(), 3);
      assert.equal(await s.currentRevision(), 5);

      const old = new Recorder(s, '/c/', 2);
      await old.until('CompactedError', () => old.error !== undefined);
      assert.ok(old.error instanceof CompactedError, `got ${old.error}`);
      assert.equal(old.error.requested, 2);
      assert.equal(old.error.compacted, 3);
      assert.deepEqual(old.events, []);

      const ok = new Recorder(s, '/c/', 3);
      await ok.untilRevision(5);
      assert.deepEqual(ok.revisions(), [4, 5]);
      const next = await s.create('/c/c', 'c1');
      assert.equal(next.modRevision, 6);
      await ok.untilRevision(6);
      ok.watcher.stop();
      assert.equal(ok.error, undefined);

      assert.deepEqual(plain(await s.get('/c/keep')), plain(keep));
      assert.deepEqual((await s.list('/c/')).items.map((kv) => [kv.key, kv.value]), [['/c/a', 'a2'], ['/c/c', 'c1'], ['/c/keep', 'k']]);
      assert.equal(await s.count('/c/'), 3);

      // compacting to an older revision changes nothing; to a future one is refused
      await s.compact(2);
      assert.equal(await s.compactedRevision(), 3);
      await assert.rejects(s.compact(100));
      assert.equal(await s.compactedRevision(), 3);
      // watch from 0 works whatever was compacted
      const live = new Recorder(s, '/c/', 0);
      await s.delete('/c/c');
      await live.untilRevision(7);
      live.watcher.stop();
      assert.equal(live.events[0].type, 'delete');
    });

    it('a burst of 200 concurrent creates is acknowledged with distinct consecutive revisions', async (s) => {
      const before = await s.currentRevision();
      const r = new Recorder(s, '/burst/', 0);
      const kvs = await Promise.all(range(0, 199).map((i) => s.create(`/burst/${String(i).padStart(3, '0')}`, `v${i}`)));
      const revs = kvs.map((kv) => kv.modRevision).sort((x, y) => x - y);
      assert.deepEqual(revs, range(before + 1, before + 200));
      assert.equal(await s.currentRevision(), before + 200);
      assert.equal(await s.count('/burst/'), 200);
      for (const [i, kv] of kvs.entries()) assert.equal(kv.value, `v${i}`);
      assert.equal((await s.get('/burst/123'))?.value, 'v123');
      await r.untilRevision(before + 200);
      r.watcher.stop();
      assert.deepEqual(r.revisions(), range(before + 1, before + 200));
    });

    it('concurrent compare-and-swap writes: exactly one wins, the rest fail without taking a revision', async (s) => {
      const a = await s.create('/cas', '0');
      const results = await Promise.allSettled(range(1, 10).map((i) => s.update('/cas', `${i}`, a.modRevision)));
      const won = results.filter((r) => r.status === 'fulfilled');
      const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      assert.equal(won.length, 1);
      assert.equal(lost.length, 9);
      const winner = (won[0] as PromiseFulfilledResult<KV>).value;
      assert.equal(winner.modRevision, a.modRevision + 1);
      for (const l of lost) {
        assert.ok(l.reason instanceof RevisionMismatchError);
        assert.deepEqual(plain(l.reason.current), plain(winner));
      }
      assert.equal(await s.currentRevision(), a.modRevision + 1);
      // the same for creates racing on one key, mixed with writes to other keys
      const mixed = await Promise.allSettled([
        s.create('/race', 'first'), s.create('/other', 'x'), s.create('/race', 'second'), s.delete('/none'),
      ]);
      assert.deepEqual(mixed.map((r) => r.status), ['fulfilled', 'fulfilled', 'rejected', 'rejected']);
      assert.ok((mixed[2] as PromiseRejectedResult).reason instanceof KeyExistsError);
      assert.ok((mixed[3] as PromiseRejectedResult).reason instanceof KeyNotFoundError);
      assert.equal((await s.get('/race'))?.value, 'first');
      assert.equal(await s.currentRevision(), a.modRevision + 3);
    });

    it('values returned by the store cannot be changed by the caller', async (s) => {
      const kv = await s.create('/f', 'v');
      try { (kv as { value: string }).value = 'changed'; } catch { /* frozen */ }
      assert.equal((await s.get('/f'))?.value, 'v');
      const got = (await s.list('/')).items[0];
      try { (got as { value: string }).value = 'changed'; } catch { /* frozen */ }
      assert.equal((await s.get('/f'))?.value, 'v');
    });

    test('close ends watches and refuses further calls', async () => {
      const s = await make();
      await s.create('/a', 'x');
      const r = new Recorder(s, '/', 0);
      await s.close();
      await r.until('the watch to end', () => r.error !== undefined);
      await assert.rejects(s.get('/a'));
      await assert.rejects(s.list('/'));
      await assert.rejects(s.create('/b', 'x'));
      await assert.rejects(s.currentRevision());
      const after = new Recorder(s, '/', 0);
      await after.until('the watch to fail', () => after.error !== undefined);
      await s.close();
    });
  });
}
