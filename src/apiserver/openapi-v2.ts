// /openapi/v2: kubectl asks for it only in protobuf (gnostic's openapi_v2.Document). Our OpenAPI v3
// documents carry every kind, so v2 is a minimal, valid document: swagger "2.0", info, empty paths.
// Encoded by hand: three fields of a protobuf message need no library.

function lenField(field: number, payload: Buffer): Buffer {
  const tag = Buffer.from([(field << 3) | 2]);
  const len: number[] = [];
  let n = payload.length;
  do { let b = n & 0x7f; n >>>= 7; if (n) b |= 0x80; len.push(b); } while (n);
  return Buffer.concat([tag, Buffer.from(len), payload]);
}
const str = (field: number, s: string) => lenField(field, Buffer.from(s, 'utf8'));

/** Document{1: swagger, 2: info{1: title, 2: version}, 8: paths{}} (field numbers of gnostic's OpenAPIv2.proto) */
export const OPENAPI_V2_PROTO: Buffer = Buffer.concat([
  str(1, '2.0'),
  lenField(2, Buffer.concat([str(1, 'Kubernetes'), str(2, 'v1.32.0')])),
  lenField(8, Buffer.alloc(0)),
]);
