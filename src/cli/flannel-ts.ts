// bin/flannel-ts: the project's tools, one subcommand each.

const USAGE = `usage: flannel-ts <command> [options]

commands:
  demo       a live three-host cluster on this machine, pods pinging across hosts
  trace      watch a running flanneld's forwarding decisions (admin socket)
  bench      measure the udp backend against kernel vxlan and host-gw (see README)
  version    print the version
`;

export async function main(argv: string[]): Promise<void> {
  try {
    await run(argv);
  } catch (e) {
    process.stderr.write(`flannel-ts: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  }
}

async function run(argv: string[]): Promise<void> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'demo':
      return (await import('./demo')).main(rest);
    case 'trace':
      return (await import('./trace')).main(rest);
    case 'bench':
      return (await import('../../bench/throughput')).main(rest);
    case 'version':
      process.stdout.write(`${(await import('./version')).versionText()}\n`);
      return;
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(USAGE);
      return;
    default:
      process.stderr.write(`flannel-ts: unknown command "${cmd}"\n${USAGE}`);
      process.exit(2);
  }
}
