// The `kyb` command line.
export async function main(argv: string[]): Promise<void> {
  const [cmd] = argv;
  switch (cmd) {
    case 'version':
      process.stdout.write('kyb v0.1.0 (Kubernetes v1.32 API)\n');
      return;
    default:
      throw new Error(`unknown command ${JSON.stringify(cmd ?? '')}; try: kyb server | kyb version`);
  }
}
