// The informer's cache: objects by `namespace/name` key, plus named secondary indexes
// (index function → values, e.g. 'byNode' → [spec.nodeName]), and the read-only Lister view.
//
// Contract (as upstream): objects in the cache are shared and READ-ONLY. Handlers and listers
// hand out the cached object itself, not a copy. To change one, clone it first
// (`structuredClone(obj)`) and write the clone through the RestClient.
import type { KObject } from '../api/types.js';
import { labelMatcher, type LabelMatcher, type LabelSelectorObject } from './label-selector.js';

/** Index function: the index values an object is filed under (none: not indexed). */
export type IndexFunc<T extends KObject = KObject> = (obj: T) => string[];

/** `namespace/name`, or `name` for cluster-scoped objects (upstream's MetaNamespaceKeyFunc). */
export function keyOf(obj: KObject): string {
  const m = obj.metadata ?? {};
  if (!m.name) throw new Error('object has no metadata.name');
  return m.namespace ? `${m.namespace}/${m.name}` : m.name;
}

/** Splits a key made by keyOf. */
export function splitKey(key: string): { namespace: string; name: string } {
  const i = key.indexOf('/');
  return i < 0 ? { namespace: '', name: key } : { namespace: key.slice(0, i), name: key.slice(i + 1) };
}

/** Index names and functions commonly wanted by components. */
export const NamespaceIndex = 'namespace';
export const indexFuncs = {
  /** metadata.namespace (always present in an Indexer under the name 'namespace') */
  namespace: ((o: KObject) => (o.metadata?.namespace ? [o.metadata.namespace] : [])) as IndexFunc,
  /** 'byNode': spec.nodeName (pods) */
  byNode: ((o: KObject) => {
    const n = (o.spec as { nodeName?: unknown } | undefined)?.nodeName;
    return typeof n === 'string' && n ? [n] : [];
  }) as IndexFunc,
  /** 'byOwner': every ownerReferences[].uid */
  byOwner: ((o: KObject) => (o.metadata?.ownerReferences ?? []).map((r) => r.uid).filter(Boolean)) as IndexFunc,
  /** 'byControllerOwner': the uid of the controller owner reference only */
  byControllerOwner: ((o: KObject) => (o.metadata?.ownerReferences ?? []).filter((r) => r.controller).map((r) => r.uid)) as IndexFunc,
};

export class Indexer<T extends KObject = KObject> {
  private readonly items = new Map<string, T>();
  private readonly funcs = new Map<string, IndexFunc<T>>();
  /** index name → value → keys */
  private readonly indices = new Map<string, Map<string, Set<string>>>();
  /** index name → key → values the object is filed under now */
  private readonly filed = new Map<string, Map<string, string[]>>();

  constructor(indexers: Record<string, IndexFunc<T>> = {}) {
    this.addIndexers({ [NamespaceIndex]: indexFuncs.namespace as IndexFunc<T>, ...indexers });
  }

  /** Adds index functions (also indexes objects already stored). Names must be new. */
  addIndexers(indexers: Record<string, IndexFunc<T>>): void {
    for (const [name, fn] of Object.entries(indexers)) {
      if (this.funcs.has(name)) throw new Error(`indexer ${JSON.stringify(name)} already exists`);
      this.funcs.set(name, fn);
      this.indices.set(name, new Map());
      this.filed.set(name, new Map());
      for (const [key, obj] of this.items) this.fileUnder(name, key, obj);
    }
  }

  private fileUnder(name: string, key: string, obj: T): void {
    const values = [...new Set(this.funcs.get(name)!(obj))];
    const idx = this.indices.get(name)!;
    for (const v of values) {
      let s = idx.get(v);
      if (!s) idx.set(v, (s = new Set()));
      s.add(key);
    }
    if (values.length) this.filed.get(name)!.set(key, values);
  }

  private unfile(key: string): void {
    for (const [name, byKey] of this.filed) {
      const values = byKey.get(key);
      if (!values) continue;
      const idx = this.indices.get(name)!;
      for (const v of values) {
        const s = idx.get(v);
        s?.delete(key);
        if (s && s.size === 0) idx.delete(v);
      }
      byKey.delete(key);
    }
  }

  /** Adds or replaces; returns the object it replaced. */
  set(obj: T): T | undefined {
    const key = keyOf(obj);
    const old = this.items.get(key);
    if (old) this.unfile(key);
    this.items.set(key, obj);
    for (const name of this.funcs.keys()) this.fileUnder(name, key, obj);
    return old;
  }
  add(obj: T): T | undefined { return this.set(obj); }
  update(obj: T): T | undefined { return this.set(obj); }

  /** Removes by object or key; returns the removed object. */
  delete(objOrKey: T | string): T | undefined {
    const key = typeof objOrKey === 'string' ? objOrKey : keyOf(objOrKey);
    const old = this.items.get(key);
    if (!old) return undefined;
    this.unfile(key);
    this.items.delete(key);
    return old;
  }

  /** Replaces the whole content. */
  replace(objs: T[]): void {
    this.items.clear();
    for (const m of this.indices.values()) m.clear();
    for (const m of this.filed.values()) m.clear();
    for (const o of objs) this.set(o);
  }

  getByKey(key: string): T | undefined { return this.items.get(key); }
  get(namespace: string | undefined, name: string): T | undefined { return this.items.get(namespace ? `${namespace}/${name}` : name); }
  has(key: string): boolean { return this.items.has(key); }
  get size(): number { return this.items.size; }
  list(): T[] { return [...this.items.values()]; }
  listKeys(): string[] { return [...this.items.keys()]; }
  entries(): IterableIterator<[string, T]> { return this.items.entries(); }

  /** Keys filed under value in the named index. */
  indexKeys(indexName: string, value: string): string[] {
    const idx = this.indices.get(indexName);
    if (!idx) throw new Error(`index ${JSON.stringify(indexName)} does not exist`);
    return [...(idx.get(value) ?? [])];
  }

  /** Objects filed under value in the named index. */
  byIndex(indexName: string, value: string): T[] {
    return this.indexKeys(indexName, value).map((k) => this.items.get(k)!);
  }

  /** Every value present in the named index. */
  indexValues(indexName: string): string[] {
    const idx = this.indices.get(indexName);
    if (!idx) throw new Error(`index ${JSON.stringify(indexName)} does not exist`);
    return [...idx.keys()];
  }
}

export type LabelSelectorArg = string | LabelSelectorObject | Record<string, string> | LabelMatcher;

/** Read-only view of an Indexer. Returned objects are the cached ones: do not mutate them. */
export class Lister<T extends KObject = KObject> {
  constructor(private readonly indexer: Indexer<T>) {}

  get(namespace: string | undefined, name: string): T | undefined { return this.indexer.get(namespace, name); }

  /** Objects in namespace (all when undefined/''), optionally filtered by a label selector. */
  list(namespace?: string, labelSelector?: LabelSelectorArg): T[] {
    const base = namespace ? this.indexer.byIndex(NamespaceIndex, namespace) : this.indexer.list();
    if (labelSelector === undefined) return base;
    const m = labelMatcher(labelSelector);
    return base.filter((o) => m(o.metadata?.labels));
  }

  byIndex(indexName: string, value: string): T[] { return this.indexer.byIndex(indexName, value); }
}
