// Server-side field validation (the `fieldValidation` query parameter, which kubectl sets to Strict
// by default): the fields of a request body that the kind's schema does not have. The schema is
// upstream's OpenAPI as generated into src/api/generated/api-fields.ts. Only names are checked here;
// types and values are validation.ts's business. Fields typed `any`/`object` (embedded raw objects)
// and map values of scalar type accept anything. In patches, strategic-merge directives (`$patch`,
// `$retainKeys`, `$setElementOrder/…`, `$deleteFromPrimitiveList/…`) are not fields.
import { apiKinds, apiTypes } from './generated/api-fields.js';

/** The model name of a kind (e.g. 'apps/v1 Deployment' → 'V1Deployment'), if the schema knows it. */
export function modelOf(group: string, version: string, kind: string): string | undefined {
  return apiKinds[`${group ? `${group}/` : ''}${version} ${kind}`];
}

const ARRAY = /^Array<(.+)>$/;
const MAP = /^\{ \[key: string\]: (.+); \}$/;

/**
 * Paths of the unknown fields in `value` read as `type` (a model name, `Array<…>`, a map, or a
 * scalar), in upstream's notation: `spec.template.spec.containers[0].imagee`, `metadata.labelz`.
 */
export function unknownFields(value: unknown, type: string, opts: { patch?: boolean } = {}, path = '', out: string[] = []): string[] {
  if (value === null || typeof value !== 'object') return out;
  const arr = ARRAY.exec(type);
  if (arr) {
    if (Array.isArray(value)) value.forEach((v, i) => unknownFields(v, arr[1]!, opts, `${path}[${i}]`, out));
    return out;
  }
  const map = MAP.exec(type);
  if (map) {
    if (!Array.isArray(value)) for (const [k, v] of Object.entries(value)) unknownFields(v, map[1]!, opts, path ? `${path}.${k}` : k, out);
    return out;
  }
  const fields = apiTypes[type];
  if (!fields || Array.isArray(value)) return out; // a scalar, any, object, IntOrString, Date …
  for (const [k, v] of Object.entries(value)) {
    if (opts.patch && k.startsWith('$')) continue;
    const p = path ? `${path}.${k}` : k;
    const t = fields[k];
    if (t === undefined) out.push(p);
    else unknownFields(v, t, opts, p, out);
  }
  return out;
}
