// A small flag parser for `kyb`: --name value, --name=value, repeatable flags, booleans.
export interface FlagSpec { [name: string]: { type: 'string' | 'boolean' | 'number' | 'list'; default?: unknown; help: string } }

export function parseFlags(argv: string[], spec: FlagSpec): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(spec)) out[k] = v.type === 'list' ? [...((v.default as unknown[]) ?? [])] : v.default;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${JSON.stringify(a)}`);
    const eq = a.indexOf('=');
    const name = eq > 0 ? a.slice(2, eq) : a.slice(2);
    const s = spec[name];
    if (!s) throw new Error(`unknown flag --${name}`);
    let val: string | undefined = eq > 0 ? a.slice(eq + 1) : undefined;
    if (s.type === 'boolean') {
      out[name] = val === undefined ? true : val !== 'false';
      continue;
    }
    if (val === undefined) {
      val = argv[++i];
      if (val === undefined) throw new Error(`flag --${name} needs a value`);
    }
    if (s.type === 'number') {
      const n = Number(val);
      if (!Number.isFinite(n)) throw new Error(`flag --${name}: ${JSON.stringify(val)} is not a number`);
      out[name] = n;
    } else if (s.type === 'list') (out[name] as string[]).push(...val.split(',').filter(Boolean));
    else out[name] = val;
  }
  return out;
}

export function usage(cmd: string, spec: FlagSpec): string {
  return `usage: kyb ${cmd} [flags]\n` + Object.entries(spec).map(([k, v]) => `  --${k}${v.type === 'boolean' ? '' : ' VALUE'}\t${v.help}${v.default !== undefined && !(Array.isArray(v.default) && !v.default.length) ? ` (default ${JSON.stringify(v.default)})` : ''}`).join('\n') + '\n';
}
