// bin/flannel-ts: the project's tools, one subcommand each.

const USAGE = `usage: flannel-ts <command> [options]

commands:
  bench      measure the udp backend against kernel vxlan and host-gw (see README)
  version    print the version
`;

export async function main(argv: string[]): Promise<void> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
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
