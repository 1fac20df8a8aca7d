// subnet.env: the file flanneld leaves for the container runtime (docker's
// --bip, the CNI flannel plugin) and for its own next start (the previous
// subnet). Same keys, order and formatting as flannel's WriteSubnetFile.

import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, unlink } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { Ip4Net, formatIp4 } from '../routes/ip4';
import { SubnetError, errorMessage } from './errors';
import { parseEnvText } from '../util/env-file';
import { type Logger, silentLogger } from '../util/log';
import { firstAddress } from './subnets';

export interface SubnetFileValues {
  /** The whole overlay: FLANNEL_NETWORK. */
  network: Ip4Net;
  /** This node's lease; FLANNEL_SUBNET shows its first address with its length. */
  subnet: Ip4Net;
  /** MTU of flannel0: FLANNEL_MTU. */
  mtu: number;
  /** Whether flanneld masquerades traffic leaving the overlay: FLANNEL_IPMASQ. */
  ipMasq: boolean;
}

/** The file's text, e.g. "FLANNEL_NETWORK=198.19.0.0/16\nFLANNEL_SUBNET=198.19.7.1/24\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=true\n". */
export function formatSubnetFile(v: SubnetFileValues): string {
  const subnet = `${formatIp4(firstAddress(v.subnet))}/${v.subnet.prefixLen}`;
  return `FLANNEL_NETWORK=${v.network}\n` + `FLANNEL_SUBNET=${subnet}\n` + `FLANNEL_MTU=${Math.trunc(v.mtu)}\n` + `FLANNEL_IPMASQ=${v.ipMasq ? 'true' : 'false'}\n`;
}

/**
 * Writes subnet.env atomically: readers see the old file or the new one,
 * never a torn one. The text goes to a temporary file in the same directory
 * (so rename stays within one filesystem), is flushed to disk, and renamed
 * over `path`. Creates the directory (mode 0755) if needed; the file is 0644
 * whatever the umask, as flannel's renameio writer does.
 * @throws SubnetError FLANNEL_ERR_SUBNET_FILE naming the path.
 */
export async function writeSubnetFile(path: string, v: SubnetFileValues): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    await mkdir(dir, { recursive: true, mode: 0o755 });
    const fh = await open(tmp, 'wx', 0o644);
    try {
      await fh.writeFile(formatSubnetFile(v));
      await fh.chmod(0o644); // open's mode is filtered by the umask; flannel ignores the umask
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw new SubnetError('FLANNEL_ERR_SUBNET_FILE', `cannot write the subnet file ${path}: ${errorMessage(e)} (check --subnet-file and that its directory is writable)`, { cause: e });
  }
}

/**
 * The subnet this node had before a restart: FLANNEL_SUBNET from the subnet
 * file, as a network (host bits cleared: "10.5.52.1/24" gives 10.5.52.0/24).
 * Returns undefined when the file or key is absent or unusable; the reason is
 * logged (a missing file is normal on first start, so only debug).
 */
export function readSubnetFile(path: string, log: Logger = silentLogger): Ip4Net | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') log.debug(`no subnet file at ${path} (first start)`);
    else log.warn(`Couldn't read the previous subnet from ${path}: ${errorMessage(e)}`);
    return undefined;
  }
  const value = parseEnvText(text).get('FLANNEL_SUBNET');
  if (value === undefined || value === '') {
    log.warn(`no FLANNEL_SUBNET in the subnet file ${path}`);
    return undefined;
  }
  const cidrs = value.split(',');
  if (cidrs.length > 1) {
    log.error(`more than one FLANNEL_SUBNET entry in ${path} ("${value}"); not reusing any`);
    return undefined;
  }
  try {
    return Ip4Net.parse(cidrs[0].trim());
  } catch (e) {
    log.error(`Couldn't parse the previous FLANNEL_SUBNET "${value}" from ${path}: ${errorMessage(e)}`);
    return undefined;
  }
}
