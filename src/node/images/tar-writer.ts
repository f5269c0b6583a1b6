// A small, deterministic tar writer (POSIX ustar, with pax extended headers for long names and
// extended attributes). The image service uses it for three things where shelling out to tar would
// be clumsier or less reproducible:
//   - the whiteout fix-up archive (0/0 character devices and `trusted.overlay.opaque` xattrs, which
//     the system tar then applies: no mknod/setfattr needed),
//   - the busybox image builder (byte-for-byte reproducible layers and OCI archives),
//   - test fixtures (layers with whiteouts, docker-save archives).
// Unpacking is always done by the system tar (see unpack.ts); this file only writes.

export type TarEntryType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo';

export interface TarEntry {
  /** path inside the archive, relative ('./' prefix optional); directories may end with '/' */
  path: string;
  type: TarEntryType;
  /** permission bits (default 0644 for files, 0755 for directories, 0777 for symlinks) */
  mode?: number;
  uid?: number;
  gid?: number;
  /** seconds since the epoch (default 0, for reproducibility) */
  mtime?: number;
  data?: Buffer | string;
  /** target of a symlink or hardlink */
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** extended attributes written as pax SCHILY.xattr.<name> records */
  xattrs?: Record<string, string>;
}

const typeFlags: Record<TarEntryType, string> = {
  file: '0', hardlink: '1', symlink: '2', char: '3', block: '4', dir: '5', fifo: '6',
};

function octal(n: number, width: number): string {
  // width includes the trailing NUL
  return n.toString(8).padStart(width - 1, '0') + '\0';
}

function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  const bodyLen = Buffer.byteLength(body);
  let len = bodyLen + 1;
  while (String(len).length + bodyLen !== len) len = String(len).length + bodyLen;
  return `${len}${body}`;
}

/** Fits a name into ustar's name (100) + prefix (155) fields, or returns undefined. */
function splitUstarName(name: string): { name: string; prefix: string } | undefined {
  if (Buffer.byteLength(name) <= 100) return { name, prefix: '' };
  for (let i = name.indexOf('/'); i > 0; i = name.indexOf('/', i + 1)) {
    const prefix = name.slice(0, i);
    const rest = name.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(rest) <= 100 && rest.length > 0) return { name: rest, prefix };
  }
  return undefined;
}

function header(fields: {
  name: string; prefix: string; mode: number; uid: number; gid: number; size: number; mtime: number;
  typeflag: string; linkname: string; devmajor: number; devminor: number;
}): Buffer {
  const b = Buffer.alloc(512);
  b.write(fields.name, 0, 100, 'utf8');
  b.write(octal(fields.mode & 0o7777, 8), 100, 'ascii');
  b.write(octal(fields.uid, 8), 108, 'ascii');
  b.write(octal(fields.gid, 8), 116, 'ascii');
  b.write(octal(fields.size, 12), 124, 'ascii');
  b.write(octal(fields.mtime, 12), 136, 'ascii');
  b.write('        ', 148, 'ascii');
  b.write(fields.typeflag, 156, 'ascii');
  b.write(fields.linkname, 157, 100, 'utf8');
  b.write('ustar\0', 257, 'ascii');
  b.write('00', 263, 'ascii');
  b.write(octal(fields.devmajor, 8), 329, 'ascii');
  b.write(octal(fields.devminor, 8), 337, 'ascii');
  b.write(fields.prefix, 345, 155, 'utf8');
  let sum = 0;
  for (const x of b) sum += x;
  b.write(octal(sum, 7) + ' ', 148, 'ascii');
  return b;
}

function pad(n: number): Buffer {
  const r = n % 512;
  return r === 0 ? Buffer.alloc(0) : Buffer.alloc(512 - r);
}

/** The blocks of one entry (pax header if needed, ustar header, data, padding). */
export function tarEntryBlocks(e: TarEntry): Buffer[] {
  let path = e.path.replace(/^\/+/, '');
  if (e.type === 'dir' && !path.endsWith('/')) path += '/';
  const data = e.data === undefined ? Buffer.alloc(0) : Buffer.isBuffer(e.data) ? e.data : Buffer.from(e.data);
  const size = e.type === 'file' ? data.length : 0;
  const linkname = e.linkname ?? '';
  const pax: string[] = [];
  let split = splitUstarName(path);
  if (!split) {
    pax.push(paxRecord('path', path));
    split = { name: path.slice(-100).replace(/^[^/]*\//, ''), prefix: '' };
    if (Buffer.byteLength(split.name) > 100) split.name = 'long-name';
  }
  if (Buffer.byteLength(linkname) > 100) pax.push(paxRecord('linkpath', linkname));
  for (const [k, v] of Object.entries(e.xattrs ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    pax.push(paxRecord(`SCHILY.xattr.${k}`, v));
  }
  const mode = e.mode ?? (e.type === 'dir' ? 0o755 : e.type === 'symlink' ? 0o777 : 0o644);
  const out: Buffer[] = [];
  if (pax.length) {
    const body = Buffer.from(pax.join(''));
    out.push(header({
      name: `PaxHeaders/${split.name}`.slice(0, 100), prefix: '', mode: 0o644, uid: 0, gid: 0, size: body.length,
      mtime: 0, typeflag: 'x', linkname: '', devmajor: 0, devminor: 0,
    }), body, pad(body.length));
  }
  out.push(header({
    name: split.name, prefix: split.prefix, mode, uid: e.uid ?? 0, gid: e.gid ?? 0, size, mtime: e.mtime ?? 0,
    typeflag: typeFlags[e.type], linkname: Buffer.byteLength(linkname) > 100 ? '' : linkname,
    devmajor: e.devmajor ?? 0, devminor: e.devminor ?? 0,
  }));
  if (size) out.push(data, pad(size));
  return out;
}

/** A whole archive in memory, entries in the given order, ending with the two zero blocks. */
export function createTar(entries: TarEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) parts.push(...tarEntryBlocks(e));
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}
