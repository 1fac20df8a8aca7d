// `flannel-ts cleanup [--subnet-file PATH]`: removes what flanneld left on
// this host (see src/daemon/cleanup.ts for the list). Run with flanneld
// stopped: a running flanneld puts its rules back within --iptables-resync.

import { cleanupHost } from '../daemon/cleanup';
import { createLogger } from '../util/log';
import { FlannelError } from '../util/errors';

export async function main(argv: string[]): Promise<void> {
  let subnetFile = process.env.FLANNELD_SUBNET_FILE || '/run/flannel/subnet.env';
  for (let i = 0; i < argv.length; i++) {
    const [k, inline] = argv[i].replace(/^--?/, '').split(/=(.*)/s, 2);
    if (k === 'subnet-file') {
      const v = inline ?? argv[++i];
      if (!v) throw new Error('cleanup: --subnet-file needs a path');
      subnetFile = v;
    } else if (k === 'h' || k === 'help') {
      process.stdout.write(
        "usage: flannel-ts cleanup [--subnet-file PATH]\nremoves flanneld's iptables/nftables rules, blackhole route, devices and restart state; keeps subnet.env and the etcd lease\n",
      );
      return;
    } else {
      throw new Error(`cleanup: unknown option ${argv[i]} (usage: flannel-ts cleanup [--subnet-file PATH])`);
    }
  }
  const r = await cleanupHost(subnetFile, createLogger(0, 'cleanup'));
  for (const x of r.removed) process.stdout.write(`removed ${x}\n`);
  if (r.removed.length === 0) process.stdout.write("nothing of flanneld's to remove\n");
  if (r.failed.length > 0) {
    throw new FlannelError('FLANNEL_ERR_CLEANUP', `could not remove: ${r.failed.join('; ')} (run as root, with flanneld stopped)`);
  }
}
