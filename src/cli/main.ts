// The `kyb` command line.
import { startServer, cleanupServerHost } from './server.js';

export async function main(argv: string[]): Promise<void> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'server': {
      if (rest.includes('--cleanup')) { await cleanupServerHost(rest); return; }
      const s = await startServer(rest);
      let stopping = false;
      const stop = async () => {
        if (stopping) return;
        stopping = true;
        await s.stop();
        process.exit(0);
      };
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
      return;
    }
    case 'simulate-nodes': {
      const { runSimulatedNodesCommand } = await import('../node/simulated/cli.js');
      await runSimulatedNodesCommand(rest);
      return;
    }
    case 'agent': {
      const { runAgentCommand } = await import('./agent.js');
      await runAgentCommand(rest);
      return;
    }
    case 'images': {
      const { runImagesCommand } = await import('./images.js');
      process.exitCode = await runImagesCommand(rest);
      return;
    }
    case 'version':
    case '--version':
      process.stdout.write('kyb v0.1.0 (Kubernetes v1.32 API)\n');
      return;
    default:
      throw new Error(`unknown command ${JSON.stringify(cmd ?? '')}; try: kyb server | kyb agent | kyb images | kyb simulate-nodes | kyb version`);
  }
}
