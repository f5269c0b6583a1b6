// `kyb images …`: the node's image store from the command line, like `k3s ctr images` / `crictl`.
//
//   kyb images ls [--data-dir DIR] [-q]                 list images (IMAGE TAG IMAGE ID SIZE)
//   kyb images import [--data-dir DIR] [--name REPO] FILE...
//                                                     import OCI layouts (dir or tar) / docker save archives
//   kyb images rm [--data-dir DIR] REF|ID...           remove names or images
//   kyb images pull [--data-dir DIR] [--private-registry FILE] REF
//   kyb images build-busybox [-o FILE] [--tag REF] [--import] [--data-dir DIR]
//                                                     build a small image from /bin/busybox without a registry
//
// The store lives in <data-dir>/agent/images (the same one the node agent uses), so an image
// imported here is available to pods with imagePullPolicy IfNotPresent or Never.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildBusyboxImage, DEFAULT_BUSYBOX_REF, ImageStore } from '../node/images/index.js';
import { splitForDisplay } from '../node/images/reference.js';
import { parseFlags, usage, type FlagSpec } from './flags.js';
import { defaultDataDir } from './server.js';

const common: FlagSpec = {
  'data-dir': { type: 'string', help: 'kybernetes data directory (images in DIR/agent/images)' },
  help: { type: 'boolean', help: 'show this help' },
};

const specs: Record<string, FlagSpec> = {
  ls: { ...common, quiet: { type: 'boolean', help: 'only image IDs' } },
  import: { ...common, name: { type: 'string', help: 'repository for OCI entries that carry only a tag' } },
  rm: { ...common },
  pull: { ...common, 'private-registry': { type: 'string', default: '/etc/kybernetes/registries.yaml', help: 'registries.yaml (mirrors, auth, TLS)' } },
  'build-busybox': {
    ...common,
    output: { type: 'string', help: 'OCI archive to write (-o); default kyb-busybox.tar, or none with --import' },
    tag: { type: 'string', default: DEFAULT_BUSYBOX_REF, help: 'image name' },
    import: { type: 'boolean', help: 'also import it into the store' },
  },
};

const aliases: Record<string, string> = { list: 'ls', remove: 'rm', rmi: 'rm' };
const shortFlags: Record<string, string> = { '-o': '--output', '-q': '--quiet', '-h': '--help' };

export function imagesRoot(dataDir: string): string {
  return join(dataDir, 'agent', 'images');
}

/** Separates positional arguments from flags (which parseFlags checks). */
function splitArgs(argv: string[], spec: FlagSpec): { flags: Record<string, unknown>; args: string[] } {
  const flagArgs: string[] = [];
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = shortFlags[argv[i]] ?? argv[i];
    if (a === '--') { args.push(...argv.slice(i + 1)); break; }
    if (!a.startsWith('--')) { args.push(a); continue; }
    flagArgs.push(a);
    const name = a.slice(2).split('=')[0];
    if (!a.includes('=') && spec[name] && spec[name].type !== 'boolean' && i + 1 < argv.length) flagArgs.push(argv[++i]);
  }
  return { flags: parseFlags(flagArgs, spec), args };
}

/** Sizes as crictl prints them (decimal units). */
export function humanSize(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = n;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) { v /= 1000; i++; }
  return `${i === 0 ? v : parseFloat(v.toPrecision(3))}${units[i]}`;
}

function table(rows: string[][]): string {
  const w = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(w[c] + 3))).join('').trimEnd()).join('\n') + '\n';
}

function helpText(): string {
  return 'usage: kyb images ls|import|rm|pull|build-busybox [flags] [args]\n' +
    Object.entries(specs).map(([k, s]) => usage(`images ${k}`, s)).join('');
}

export async function runImagesCommand(argv: string[]): Promise<number> {
  const [sub0, ...rest] = argv;
  const sub = aliases[sub0] ?? sub0;
  if (!sub || sub === 'help' || sub === '--help' || sub === '-h') {
    process.stdout.write(helpText());
    return sub ? 0 : 1;
  }
  const spec = specs[sub];
  if (!spec) {
    process.stderr.write(`kyb images: unknown command ${JSON.stringify(sub)}\n${helpText()}`);
    return 1;
  }
  let flags: Record<string, unknown>;
  let args: string[];
  try {
    ({ flags, args } = splitArgs(rest, spec));
  } catch (e) {
    process.stderr.write(`kyb images ${sub}: ${(e as Error).message}\n`);
    return 1;
  }
  if (flags.help) {
    process.stdout.write(usage(`images ${sub}`, spec));
    return 0;
  }
  const dataDir = (flags['data-dir'] as string | undefined) ?? defaultDataDir();
  const store = () => new ImageStore({ root: imagesRoot(dataDir), registriesConfig: flags['private-registry'] as string | undefined });
  try {
    switch (sub) {
      case 'ls': {
        const images = await store().list();
        if (flags.quiet) {
          process.stdout.write(images.map((i) => `${i.id}\n`).join(''));
          return 0;
        }
        const rows = [['IMAGE', 'TAG', 'IMAGE ID', 'SIZE']];
        for (const i of images) {
          const id = i.id.slice(7, 20);
          const names = i.repoTags.length ? i.repoTags : i.repoDigests.length ? [i.repoDigests[0]] : [];
          if (!names.length) rows.push(['<none>', '<none>', id, humanSize(i.size)]);
          for (const n of names) {
            const d = splitForDisplay(n);
            rows.push([d.repository, d.tag, id, humanSize(i.size)]);
          }
        }
        process.stdout.write(table(rows));
        return 0;
      }
      case 'import': {
        if (!args.length) throw new Error('which files? usage: kyb images import FILE...');
        const s = store();
        for (const f of args) {
          const refs = await s.importArchive(f, { name: flags.name as string | undefined });
          for (const r of refs) process.stdout.write(`imported ${r}\n`);
        }
        return 0;
      }
      case 'rm': {
        if (!args.length) throw new Error('which images? usage: kyb images rm REF|ID...');
        const s = store();
        let rc = 0;
        for (const a of args) {
          try {
            const r = await s.remove(a);
            for (const u of r.untagged) process.stdout.write(`Untagged: ${u}\n`);
            for (const d of r.deleted) process.stdout.write(`Deleted: ${d}\n`);
          } catch (e) {
            process.stderr.write(`kyb images rm: ${(e as Error).message}\n`);
            rc = 1;
          }
        }
        return rc;
      }
      case 'pull': {
        if (args.length !== 1) throw new Error('usage: kyb images pull REF');
        const r = await store().pull(args[0]);
        process.stdout.write(`Image is up to date for ${r.repoDigest ?? r.ref} (${r.id})\n`);
        return 0;
      }
      case 'build-busybox': {
        // with --import and no -o, the archive is only a vehicle: written to a temp dir and removed
        const tmp = flags.import && !flags.output ? mkdtempSync(join(tmpdir(), 'kyb-busybox-')) : undefined;
        try {
          const out = (flags.output as string | undefined) ?? (tmp ? join(tmp, 'busybox.tar') : 'kyb-busybox.tar');
          const r = await buildBusyboxImage({ out, ref: flags.tag as string });
          if (!tmp) process.stdout.write(`wrote ${r.path}: ${r.ref} (image ID ${r.id})\n`);
          if (flags.import) {
            const refs = await store().importArchive(r.path);
            for (const ref of refs) process.stdout.write(`imported ${ref} (image ID ${r.id})\n`);
          }
        } finally {
          if (tmp) rmSync(tmp, { recursive: true, force: true });
        }
        return 0;
      }
    }
  } catch (e) {
    process.stderr.write(`kyb images ${sub}: ${(e as Error).message}\n`);
    return 1;
  }
  return 1;
}
