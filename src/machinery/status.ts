// Errors as data: one error family mirroring metav1.Status reasons. Every layer throws these;
// the API server turns them into a Status body with the matching HTTP code, in one place.

export type StatusReason =
  | 'NotFound' | 'AlreadyExists' | 'Conflict' | 'Invalid' | 'BadRequest' | 'Forbidden'
  | 'Unauthorized' | 'Gone' | 'Expired' | 'TooManyRequests' | 'Timeout' | 'InternalError'
  | 'MethodNotAllowed' | 'UnsupportedMediaType' | 'NotAcceptable' | 'RequestEntityTooLarge'
  | 'ServiceUnavailable';

export interface StatusCause { reason?: string; message?: string; field?: string }
export interface StatusDetails {
  name?: string; group?: string; kind?: string; uid?: string;
  causes?: StatusCause[]; retryAfterSeconds?: number;
}
export interface Status {
  kind: 'Status'; apiVersion: 'v1'; metadata: Record<string, unknown>;
  status: 'Success' | 'Failure'; message?: string; reason?: StatusReason | string;
  details?: StatusDetails; code: number;
}

export class StatusError extends Error {
  constructor(
    readonly code: number,
    readonly reason: StatusReason,
    message: string,
    readonly details?: StatusDetails,
  ) {
    super(message);
    this.name = 'StatusError';
  }
  toStatus(): Status {
    const s: Status = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: this.message, reason: this.reason, code: this.code };
    if (this.details) s.details = this.details;
    return s;
  }
}

/** A field error as upstream's field.Error: `spec.containers[0].image: Required value`. */
export interface FieldError {
  type: 'FieldValueRequired' | 'FieldValueInvalid' | 'FieldValueNotSupported' | 'FieldValueDuplicate'
    | 'FieldValueForbidden' | 'FieldValueTooLong' | 'FieldValueTooMany' | 'FieldValueTypeInvalid' | 'FieldValueNotFound';
  field: string;
  /** the full detail text, e.g. `Required value` or `Invalid value: "x": must be ...` */
  message: string;
}

function q(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v);
}

/** Constructors for field errors in upstream's wording. */
export const field = {
  required: (f: string, detail = ''): FieldError => ({ type: 'FieldValueRequired', field: f, message: detail ? `Required value: ${detail}` : 'Required value' }),
  invalid: (f: string, value: unknown, detail = ''): FieldError => ({ type: 'FieldValueInvalid', field: f, message: `Invalid value: ${q(value)}${detail ? `: ${detail}` : ''}` }),
  notSupported: (f: string, value: unknown, valid: string[]): FieldError => ({ type: 'FieldValueNotSupported', field: f, message: `Unsupported value: ${q(value)}: supported values: ${valid.map((v) => JSON.stringify(v)).join(', ')}` }),
  duplicate: (f: string, value: unknown): FieldError => ({ type: 'FieldValueDuplicate', field: f, message: `Duplicate value: ${q(value)}` }),
  notFound: (f: string, value: unknown): FieldError => ({ type: 'FieldValueNotFound', field: f, message: `Not found: ${q(value)}` }),
  forbidden: (f: string, detail: string): FieldError => ({ type: 'FieldValueForbidden', field: f, message: `Forbidden: ${detail}` }),
  tooLong: (f: string, max: number): FieldError => ({ type: 'FieldValueTooLong', field: f, message: `Too long: may not be more than ${max} bytes` }),
  typeInvalid: (f: string, value: unknown, detail: string): FieldError => ({ type: 'FieldValueTypeInvalid', field: f, message: `Invalid value: ${q(value)}: ${detail}` }),
};

export const errors = {
  notFound: (resource: string, name: string, group = ''): StatusError =>
    new StatusError(404, 'NotFound', `${group ? `${resource}.${group}` : resource} "${name}" not found`, { name, group: group || undefined, kind: resource }),
  alreadyExists: (resource: string, name: string, group = ''): StatusError =>
    new StatusError(409, 'AlreadyExists', `${group ? `${resource}.${group}` : resource} "${name}" already exists`, { name, group: group || undefined, kind: resource }),
  conflict: (resource: string, name: string, detail: string, group = ''): StatusError =>
    new StatusError(409, 'Conflict', `Operation cannot be fulfilled on ${group ? `${resource}.${group}` : resource} "${name}": ${detail}`, { name, group: group || undefined, kind: resource }),
  /** 422 with causes; kind is the Kind (`Pod`), as upstream's message uses `pods "x" is invalid` built from the resource. */
  invalid: (kind: string, resource: string, name: string, errs: FieldError[], group = ''): StatusError => {
    const list = errs.map((e) => `${e.field}: ${e.message}`);
    const msg = `${group ? `${resource}.${group}` : resource} "${name}" is invalid: ${list.length === 1 ? list[0] : `[${list.join(', ')}]`}`;
    return new StatusError(422, 'Invalid', msg, { name, group: group || undefined, kind, causes: errs.map((e) => ({ reason: e.type, message: e.message, field: e.field })) });
  },
  badRequest: (message: string): StatusError => new StatusError(400, 'BadRequest', message),
  forbidden: (message: string): StatusError => new StatusError(403, 'Forbidden', message),
  unauthorized: (message = 'Unauthorized'): StatusError => new StatusError(401, 'Unauthorized', message),
  gone: (message: string): StatusError => new StatusError(410, 'Expired', message),
  methodNotAllowed: (message: string): StatusError => new StatusError(405, 'MethodNotAllowed', message),
  unsupportedMediaType: (contentType: string): StatusError => new StatusError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got ${JSON.stringify(contentType)})`),
  tooLarge: (message = 'Request entity too large: limit is 3145728'): StatusError => new StatusError(413, 'RequestEntityTooLarge', message),
  timeout: (message: string): StatusError => new StatusError(504, 'Timeout', message),
  tooManyRequests: (message: string): StatusError => new StatusError(429, 'TooManyRequests', message),
  internal: (message: string): StatusError => new StatusError(500, 'InternalError', `Internal error occurred: ${message}`),
  serviceUnavailable: (message: string): StatusError => new StatusError(503, 'ServiceUnavailable', message),
};

export function isStatusError(e: unknown, reason?: StatusReason): e is StatusError {
  return e instanceof StatusError && (reason === undefined || e.reason === reason);
}
