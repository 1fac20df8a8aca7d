// flanneld's life: pick the external interface, wait for the network config,
// lease a subnet, bring up flannel0 and the UDP socket, write subnet.env, then
// forward packets while the lease table follows etcd. The control plane
// (SubnetManager) and the data plane (DataPlane) meet only in the LeaseTable.

import { DataPlane } from '../encap/data-plane';
import { Ip4Net, formatIp4, parseIp4 } from '../routes/ip4';
import { Lease, LeaseDiff, LeaseTable } from '../routes/lease-table';
import { EtcdRegistry } from '../subnet/registry';
import { NetworkConfig } from '../subnet/config';
import { SubnetManager } from '../subnet/subnet-manager';
import { readSubnetFile, writeSubnetFile } from '../subnet/subnet-env';
import { configureTun } from '../tun/configure';
import { TunDevice } from '../tun/tun-device';
import { UdpSocket } from '../tun/udp-socket';
import { FlanneldOptions } from './flags';
import { HealthServer, startHealthServer } from './healthz';
import { ExternalInterface, findExternalInterface } from './iface';
import { Logger } from './log';
import { createMetrics } from './metrics';

/** flannel's udp encapsulation overhead: outer IPv4 (20) + UDP (8) headers. */
export const UDP_OVERHEAD = 28;
const TUN_NAME = 'flannel0';
/** Socket buffers: large enough that a burst of batches is not dropped by the kernel. */
const SOCKET_BUFFER = 4 * 1024 * 1024;

export class Flanneld {
  private readonly stopper = new AbortController();
  private ext: ExternalInterface | undefined;
  private sm: SubnetManager | undefined;
  private registry: EtcdRegistry | undefined;
  private health: HealthServer | undefined;
  private table: LeaseTable | undefined;
  private dataPlane: DataPlane | undefined;
  private config: NetworkConfig | undefined;
  private lease: Lease | undefined;
  private ready = false;
  private notReady = 'starting';

  constructor(
    private readonly opts: FlanneldOptions,
    private readonly log: Logger,
  ) {}

  /** Runs until stop(); rejects on a start-up error (the caller exits 1). */
  async start(): Promise<void> {
    const o = this.opts;
    this.ext = findExternalInterface({ iface: o.iface, ifaceRegex: o.ifaceRegex, publicIp: o.publicIp });
    this.log.info({ iface: this.ext.name, ifaceAddr: this.ext.ifaceAddr, publicIp: this.ext.publicIp, mtu: this.ext.mtu }, `Using interface ${this.ext.name} with address ${this.ext.ifaceAddr} (public IP ${this.ext.publicIp})`);
    if (o.ipMasq) {
      throw Object.assign(new Error('--ip-masq is not supported by flannel-ts yet: run without it (the default is false)'), { code: 'FLANNEL_ERR_FLAG' });
    }
    if (o.iptablesForwardRules) {
      this.log.warn('--iptables-forward-rules: flannel-ts does not install FORWARD rules yet; if this host\'s FORWARD policy is DROP, accept the overlay Network there yourself');
    }
    if (o.healthzPort > 0) {
      const registry = createMetrics({
        counters: () => this.dataPlane?.counters,
        table: () => this.table,
        batchSizes: () => this.dataPlane?.batchSizes,
        control: () => ({
          etcdUp: this.sm?.etcdUp ?? false,
          leaseRenewals: this.sm?.stats.renewals ?? 0,
          leaseRenewFailures: this.sm?.stats.renewFailures ?? 0,
          watchResyncs: this.sm?.stats.resyncs ?? 0,
        }),
      });
      this.health = await startHealthServer({
        host: o.healthzIp,
        port: o.healthzPort,
        ready: () => this.ready,
        notReadyReason: () => (this.ready ? undefined : this.notReady),
        metrics: () => registry.metrics(),
        metricsContentType: registry.contentType,
      });
      this.log.info(`Serving /healthz, /readyz and /metrics on ${o.healthzIp}:${this.health.port}`);
    }

    this.registry = new EtcdRegistry({
      endpoints: o.etcdEndpoints,
      prefix: o.etcdPrefix,
      tls: o.etcdKeyfile || o.etcdCertfile || o.etcdCafile ? { key: o.etcdKeyfile, cert: o.etcdCertfile, ca: o.etcdCafile } : undefined,
      username: o.etcdUsername,
      password: o.etcdPassword,
      log: this.log,
    });
    this.sm = new SubnetManager({
      registry: this.registry,
      publicIp: parseIp4(this.ext.publicIp),
      backendType: 'udp',
      previousSubnet: readSubnetFile(o.subnetFile, this.log),
      renewMarginMinutes: o.subnetLeaseRenewMargin,
      log: this.log,
    });

    this.notReady = 'waiting for the network config in etcd';
    this.config = await this.sm.waitForConfig(this.stopper.signal);
    this.notReady = 'acquiring a subnet lease';
    this.lease = await this.sm.acquireLease(this.config, this.stopper.signal);
    this.log.info(`Acquired lease ${this.lease.subnet} (public IP ${formatIp4(this.lease.publicIp)})`);

    const mtu = this.ext.mtu - UDP_OVERHEAD;
    const tun = TunDevice.open(TUN_NAME);
    let udp: UdpSocket;
    try {
      configureTun({ name: tun.name, address: formatIp4(this.lease.subnet.ip), network: this.config.network.toString(), mtu });
      udp = UdpSocket.open(parseIp4(this.ext.ifaceAddr), this.config.port, { rcvbuf: SOCKET_BUFFER, sndbuf: SOCKET_BUFFER });
    } catch (e) {
      tun.close();
      throw e;
    }
    this.table = new LeaseTable(this.config.port);
    this.table.setLocalSubnet(this.lease.subnet);
    this.dataPlane = new DataPlane(tun, udp, this.table);
    this.dataPlane.start();
    this.log.info(`${tun.name} is up: ${formatIp4(this.lease.subnet.ip)}/32, MTU ${mtu}, route ${this.config.network}; UDP port ${this.config.port}`);

    this.sm.on('change', (diff) => this.logDiff(diff));
    this.sm.on('lease', (lease) => void this.leaseChanged(lease));
    this.sm.on('etcd', (up) => (up ? this.log.info('etcd is reachable again') : this.log.warn('etcd is unreachable; forwarding continues with the last known leases')));
    this.sm.startWatch(this.table);

    await this.writeSubnetEnv(mtu);
    this.ready = true;
    this.notReady = '';
    this.log.info('flanneld is ready');
  }

  private async writeSubnetEnv(mtu = this.ext!.mtu - UDP_OVERHEAD): Promise<void> {
    await writeSubnetFile(this.opts.subnetFile, { network: this.config!.network, subnet: this.lease!.subnet, mtu, ipMasq: this.opts.ipMasq });
    this.log.info(`Wrote ${this.opts.subnetFile}`);
  }

  private logDiff(diff: LeaseDiff): void {
    for (const p of diff.added) this.log.info(`Subnet added: ${p.subnet} via ${formatIp4(p.publicIp)}`);
    for (const p of diff.changed) this.log.info(`Subnet changed: ${p.subnet} now via ${formatIp4(p.publicIp)}`);
    for (const p of diff.removed) this.log.info(`Subnet removed: ${p.subnet}`);
  }

  /** Our lease was re-acquired; if the subnet moved, flannel0 and subnet.env follow it. */
  private async leaseChanged(lease: Lease): Promise<void> {
    const old = this.lease!.subnet;
    this.lease = lease;
    if (lease.subnet.equals(old)) {
      this.log.info(`Lease ${lease.subnet} taken back after it was lost`);
      return;
    }
    this.log.warn(`Lease moved from ${old} to ${lease.subnet}: reconfiguring ${TUN_NAME}; pods on the old subnet must be re-created`);
    try {
      configureTun({ name: TUN_NAME, address: formatIp4(lease.subnet.ip), network: this.config!.network.toString(), mtu: this.ext!.mtu - UDP_OVERHEAD });
      this.table!.setLocalSubnet(lease.subnet);
      await this.writeSubnetEnv();
    } catch (e) {
      this.log.error({ err: e }, `Could not move to the new lease ${lease.subnet}`);
    }
  }

  get localSubnet(): Ip4Net | undefined {
    return this.lease?.subnet;
  }

  /** Stops forwarding and removes flannel0; keeps the lease in etcd (flannel does). */
  async stop(): Promise<void> {
    this.ready = false;
    this.stopper.abort();
    this.dataPlane?.stop();
    await this.sm?.close();
    this.registry?.close();
    await this.health?.close();
  }
}
