// Adoption and release of dependents by a controller (upstream's ControllerRefManager): an owner
// claims the objects its selector matches that have no controller, keeps those it controls that
// still match, and releases those it controls that no longer match.
import type { KObject, OwnerReference } from '../../api/types.js';
import { isStatusError } from '../../machinery/status.js';
import type { PatchType, ResourceRef } from '../../client/index.js';
import { controllerRefOf } from './pod-util.js';

export interface PatchClient {
  patch<T extends KObject>(res: ResourceRef, ns: string | undefined | null, name: string, patch: unknown, type: PatchType): Promise<T>;
}

export function newControllerRef(owner: KObject, apiVersion: string, kind: string): OwnerReference {
  return { apiVersion, kind, name: owner.metadata!.name!, uid: owner.metadata!.uid!, controller: true, blockOwnerDeletion: true };
}

export interface ClaimOptions<T extends KObject> {
  client: PatchClient;
  resource: ResourceRef;
  owner: KObject;
  ownerApiVersion: string;
  ownerKind: string;
  matches(obj: T): boolean;
  /** upstream's canAdopt: a fresh read that the owner still exists with the same uid and is not being deleted; throws if not */
  canAdopt(): Promise<void>;
}

/** The objects owner controls after adopting orphans that match and releasing those that no longer do. */
export async function claimObjects<T extends KObject>(objs: T[], o: ClaimOptions<T>): Promise<T[]> {
  const uid = o.owner.metadata?.uid;
  const ownerDeleting = !!o.owner.metadata?.deletionTimestamp;
  const claimed: T[] = [];
  let adoptChecked: Promise<void> | undefined;
  for (const obj of objs) {
    const ref = controllerRefOf(obj);
    if (ref) {
      if (ref.uid !== uid) continue; // someone else's
      if (o.matches(obj)) { claimed.push(obj); continue; }
      if (ownerDeleting) continue;
      await release(obj, o);
      continue;
    }
    if (ownerDeleting || !o.matches(obj) || obj.metadata?.deletionTimestamp) continue;
    adoptChecked ??= o.canAdopt();
    await adoptChecked;
    const adopted = await adopt(obj, o);
    if (adopted) claimed.push(adopted);
  }
  return claimed;
}

function guard(obj: KObject): unknown[] {
  return [
    { op: 'test', path: '/metadata/uid', value: obj.metadata!.uid },
    { op: 'test', path: '/metadata/resourceVersion', value: obj.metadata!.resourceVersion },
  ];
}

async function adopt<T extends KObject>(obj: T, o: ClaimOptions<T>): Promise<T | undefined> {
  const refs = [...(obj.metadata?.ownerReferences ?? []), newControllerRef(o.owner, o.ownerApiVersion, o.ownerKind)];
  try {
    return await o.client.patch<T>(o.resource, obj.metadata?.namespace, obj.metadata!.name!,
      [...guard(obj), { op: 'add', path: '/metadata/ownerReferences', value: refs }], 'json');
  } catch (e) {
    if (isStatusError(e, 'NotFound')) return undefined;
    throw e;
  }
}

async function release<T extends KObject>(obj: T, o: ClaimOptions<T>): Promise<void> {
  const uid = o.owner.metadata?.uid;
  const refs = (obj.metadata?.ownerReferences ?? []).filter((r) => r.uid !== uid);
  try {
    await o.client.patch<T>(o.resource, obj.metadata?.namespace, obj.metadata!.name!,
      [...guard(obj), refs.length ? { op: 'replace', path: '/metadata/ownerReferences', value: refs } : { op: 'remove', path: '/metadata/ownerReferences' }], 'json');
  } catch (e) {
    if (isStatusError(e, 'NotFound')) return;
    throw e;
  }
}
