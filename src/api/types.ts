// Shapes shared by the resource table, strategies and the API server.
import type { FieldError } from '../machinery/status.js';

/** Any Kubernetes object as JSON. */
export interface KObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
  [k: string]: unknown;
}

export interface OwnerReference {
  apiVersion: string; kind: string; name: string; uid: string; controller?: boolean; blockOwnerDeletion?: boolean;
}

export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string | null;
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  finalizers?: string[];
  managedFields?: unknown[];
  [k: string]: unknown;
}

export interface TableColumn {
  name: string;
  type: 'string' | 'integer' | 'number' | 'boolean' | 'date';
  format: string; // 'name' for the name column, '' otherwise
  description: string;
  priority: number; // 0 always shown, 1 with -o wide
}

/** A subresource the API serves for a resource. */
export interface SubresourceDef {
  name: string; // 'status' | 'scale' | 'log' | 'exec' | 'binding' | 'eviction' | ...
  /** kind returned, e.g. {group:'autoscaling',version:'v1',kind:'Scale'}; default: the resource's own */
  group?: string; version?: string; kind?: string;
  verbs: string[];
}

/** Per-kind behaviour (upstream's registry strategy). All hooks are optional. */
export interface Strategy {
  /** fill upstream defaults (in place) on create and update bodies */
  defaults?(obj: KObject): void;
  /** validation of a whole object; old is set on update */
  validate?(obj: KObject, old?: KObject): FieldError[];
  /** whether spec and status are split (status only via /status; generation bumps on spec change) */
  statusSubresource?: boolean;
  /** fields (top-level keys) whose change bumps metadata.generation; default ['spec'] when statusSubresource, else none */
  generationFields?: string[];
  /** columns for Table output; default: Name + Created At */
  columns?: TableColumn[];
  /** cells for one row, matching columns; now is the clock for ages */
  row?(obj: KObject, now: Date): unknown[];
  /** extra field-selector fields this kind supports beyond metadata.name / metadata.namespace */
  fields?(obj: KObject): Record<string, string>;
  /** prepare a create: clear status etc. (in place) */
  prepareForCreate?(obj: KObject): void;
  /** prepare an update of the main resource (in place), e.g. keep old status */
  prepareForUpdate?(obj: KObject, old: KObject): void;
}

export interface ResourceDef {
  group: string; // '' for core
  version: string;
  kind: string;
  listKind: string;
  plural: string; // resource name, e.g. 'pods'
  singular: string;
  namespaced: boolean;
  shortNames?: string[];
  categories?: string[];
  verbs: string[];
  subresources?: SubresourceDef[];
  strategy: Strategy;
  /** the resource is served but not stored (e.g. selfsubjectaccessreviews: create-only virtual resources) */
  virtual?: boolean;
  /** storage key segment shared by several versions (e.g. autoscaling v1 and v2 hpa); default `${group}/${plural}` */
  storageKey?: string;
}

export function apiVersionOf(def: { group: string; version: string }): string {
  return def.group ? `${def.group}/${def.version}` : def.version;
}
