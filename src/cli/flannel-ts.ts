// bin/flannel-ts: the project's tools, one subcommand each.

const USAGE = `usage: flannel-ts <command> [options]

commands:
  demo       a live three-host cluster on this machine, a ping followed hop by hop
             (--keep leaves it up, --down removes it, --lang zh narrates in Chinese)
  shell      step into a host or pod of a kept demo: flannel-ts shell h1 [-- command]
  trace      watch a running flanneld's forwarding decisions (admin socket)
  bench      udp vs vxlan vs host-gw, each through flanneld, on two lab hosts: table, JSON, SVG
             (--help for options; see README)
  cni        the flannel CNI plugin (CNI_COMMAND etc. from the environment; also bin/flannel)
  mk-docker-opts  docker daemon options from subnet.env (flannel's mk-docker-opts.sh)
  cleanup    remove what flanneld leaves on this host on purpose (firewall rules, blackhole route,
             devices, restart state): flannel-ts cleanup [--subnet-file PATH]
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
      return (await import('../demo/demo')).main(rest);
    case 'shell':
      return (await import('./shell')).main(rest);
    case 'trace':
      return (await import('./trace')).main(rest);
    case 'bench':
      return (await import('../bench/bench')).main(rest);
    case 'cni':
      return (await import('../cni/plugin')).main();
    case 'cleanup':
      return (await import('./cleanup')).main(rest);
    case 'mk-docker-opts':
      return (await import('./mk-docker-opts')).main(rest);
    case 'version':
      process.stdout.write(`${(await import('../util/version')).versionText()}\n`);
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
