// flanneld's life: pick the external interface, wait for the network config,
// create the backend it names, lease a subnet, start the backend, write
// subnet.env, then keep the lease table in step with etcd. The control plane
// (SubnetManager) and the data plane (the backend) meet only in the LeaseTable.
//
// A planned restart is quicker: a clean stop of a udp node saves its subnet,
// config and peers (src/subnet/restart-state.ts) and the next start forwards
// on them at once, before it has even loaded the etcd client, then confirms
// everything with etcd as a cold start would. Start-up time is mostly Node
// and module loading (the etcd client alone is ~150 ms of CPU), so this cuts
// the traffic gap of `systemctl restart` roughly in half.

import { type Backend, type BackendContext, createBackend } from '../backend';
import { type TrafficManager, type TrafficMode, createTrafficManager, removeLeftovers } from '../iptables';
import { onPath } from '../iptables/exec';
import { formatIp4, parseIp4 } from '../routes/ip4';
import { type Lease, type LeaseDiff, LeaseTable } from '../routes/lease-table';
import type { NetworkConfig } from '../subnet/config';
import { describeConfigDifference } from '../subnet/config-change';
import { EtcdRegistry, preloadEtcd3 } from '../subnet/registry';
import { type RestartState, saveRestartState, takeRestartState } from '../subnet/restart-state';
import { formatSubnetFile, readSubnetFile, writeSubnetFile } from '../subnet/subnet-env';
import * as fs from 'node:fs';
import { SubnetManager } from '../subnet/subnet-manager';
import type { FlanneldOptions } from './options';
import { type AdminServer, startAdminServer } from './admin';
import { type HealthServer, startHealthServer } from './healthz';
import { SystemdNotifier } from './notify';
import { BlackholeRoute } from './blackhole';
import { warnIfNoBrNetfilter } from './host-checks';
import { type ExternalInterface, findExternalInterface } from './iface';
import type { Logger } from '../util/log';
import type { Registry } from 'prom-client';

export class Flanneld {
  private readonly stopper = new AbortController();
  private ext: ExternalInterface | undefined;
  private sm: SubnetManager | undefined;
  private registry: EtcdRegistry | undefined;
  private health: HealthServer | undefined;
  private admin: AdminServer | undefined;
  private table: LeaseTable | undefined;
  private backend: Backend | undefined;
  private config: NetworkConfig | undefined;
  private lease: Lease | undefined;
  private traffic: TrafficManager | undefined;
  private blackhole: BlackholeRoute | undefined;
  private mtu = 0;
  private ready = false;
  /** The whole start is done (etcd confirmed the lease); a warm start is ready earlier. */
  private started = false;
  private notReady = 'starting';
  private metricsRegistry: Registry | undefined;
  private readonly notifier: SystemdNotifier;

  constructor(
    private readonly opts: FlanneldOptions,
    private readonly log: Logger,
  ) {
    this.notifier = new SystemdNotifier(log);
  }

  /**
   * THE readiness condition, for /readyz and systemd's READY=1 alike (one
   * place, so a new condition, e.g. "the data-plane thread forwards", is added
   * once). flanneld is ready when, by THIS start:
   *  - cold start: the lease is held, the backend forwards (flannel0 up), the
   *    traffic rules are set, and subnet.env has been written;
   *  - warm start of the udp backend (a planned restart): flannel0 forwards on
   *    the leases saved at the last stop and subnet.env has been read back and
   *    found to be exactly what this start would write (confirmed). That is
   *    reached even while etcd is unreachable, so a Type=notify unit does not
   *    kill a daemon that carries traffic; etcd confirms the lease later.
   */
  private markReady(how: string): void {
    const first = !this.ready;
    this.ready = true;
    this.notReady = '';
    this.notifier.send(first ? ['READY=1', `STATUS=${how}`] : [`STATUS=${how}`]);
  }

  /** Brings the node up; rejects on a start-up error (the caller exits 1). */
  async start(): Promise<void> {
    const o = this.opts;
    this.ext = await findExternalInterface({ iface: o.iface, ifaceRegex: o.ifaceRegex, ifaceCanReach: o.ifaceCanReach, publicIp: o.publicIp });
    this.log.info(
      { iface: this.ext.name, ifaceAddr: this.ext.ifaceAddr, publicIp: this.ext.publicIp, mtu: this.ext.mtu },
      `Using interface ${this.ext.name} with address ${this.ext.ifaceAddr} (public IP ${this.ext.publicIp})`,
    );
    if (o.healthzPort > 0) await this.startHealth();
    // Before anything changes on the host: a bad --admin-socket is an exit 1
    // that leaves no lease, no flannel0 and no subnet.env behind.
    if (o.adminSocket) {
      this.admin = await startAdminServer(
        o.adminSocket,
        {
          setTracer: (t) => {
            const b = this.backend;
            if (!this.ready || !b?.setTracer) return false;
            b.setTracer(t);
            return true;
          },
          leases: () => ({ local: this.lease?.subnet.toString(), backend: this.backend?.type, peers: this.table?.describe() ?? [] }),
          counters: async () => (await this.metrics().getMetricsAsJSON()).filter((m) => m.name.startsWith('flannel_')),
        },
        this.log,
        o.adminSocketGiven,
      );
    }

    const publicIp = parseIp4(this.ext.publicIp);
    const previousSubnet = readSubnetFile(o.subnetFile, this.log);
    const warm = takeRestartState(o.subnetFile, { publicIp, subnet: previousSubnet }, this.log);
    if (warm) await this.warmStart(warm);

    if (warm) await preloadEtcd3();
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
      publicIp,
      previousSubnet,
      renewMarginMinutes: o.subnetLeaseRenewMargin,
      log: this.log,
    });

    this.notReady = warm ? 'confirming the lease with etcd (forwarding on the leases known at the last stop)' : 'waiting for the network config in etcd';
    this.config = await this.sm.waitForConfig(this.stopper.signal);
    if (this.backend && warm) {
      const diff = describeConfigDifference(warm.config, this.config);
      if (diff !== undefined) {
        // Applied at start, as flannel does: the quick path's data plane goes, a cold start follows.
        this.log.warn(`The network config changed while flanneld was stopped (${diff}): starting over with the new one`);
        await this.backend.stop();
        this.backend = undefined;
        this.table = undefined;
      }
    }
    const warmBackend = this.backend !== undefined;
    this.backend ??= createBackend(this.config.backendType, this.backendContext());
    const backend = this.backend;
    const backendData = await backend.prepare(this.config);
    this.sm.useBackend(backend.type, backendData, (l) => backend.accepts(l));

    this.notReady = 'acquiring a subnet lease';
    this.lease = await this.sm.acquireLease(this.config, this.stopper.signal);
    this.log.info(`Acquired lease ${this.lease.subnet} (public IP ${formatIp4(this.lease.publicIp)}, backend ${backend.type})`);

    if (warmBackend && this.table && !this.table.localSubnet?.equals(this.lease.subnet)) {
      this.log.warn(`The lease is ${this.lease.subnet}, not ${this.table.localSubnet} as at the last stop: moving flannel0`);
      this.table.setLocalSubnet(this.lease.subnet);
      await backend.relocate(this.lease);
    }
    if (!warmBackend) {
      this.table = new LeaseTable(this.config.port);
      this.table.setLocalSubnet(this.lease.subnet);
      this.mtu = await backend.start(this.lease, this.config, this.table);
    }
    const table = this.table!;

    this.sm.on('change', (diff) => this.leasesChanged(diff));
    this.sm.on('lease', (lease) => void this.leaseMoved(lease));
    // etcd going up or down is logged by the subnet manager; the metrics read sm.etcdUp.
    // The first list replaces the saved leases of a quick restart (the differences are logged).
    this.sm.startWatch(table);

    await this.startTraffic();
    if (o.ipBlackholeRoute) {
      this.blackhole = new BlackholeRoute(this.lease.subnet, o.iptablesResync, this.log);
      this.blackhole.start();
    }
    await this.writeSubnetEnv();
    // Ready (/readyz, READY=1) only once packets are forwarded: the udp
    // backend's data-plane thread has entered its loop (start() already
    // waited for it; kernel backends have no such promise).
    await backend.forwarding;
    this.markReady(`ready: lease ${this.lease.subnet}, ${table.size} peers`);
    this.started = true;
    this.log.info('flanneld is ready');
    // Metrics were kept off the start-up path; from now on they are collected (event-loop delay included).
    if (o.healthzPort > 0) setImmediate(() => this.metrics());
  }

  /** What every backend is built with: the interface, the log and flannel-ts's data-plane flags. */
  private backendContext(): BackendContext {
    const o = this.opts;
    return {
      ext: this.ext!,
      log: this.log,
      offloads: { tunOffload: o.tunOffload, tunGro: o.tunGro, udpGso: o.udpGso, udpGro: o.udpGro },
      dataPlane: { warmMs: o.dataplaneWarmupMs, spinUs: o.dataplaneSpinUs, nice: o.dataplaneNice, sliceUs: o.dataplaneSliceUs, mlock: o.dataplaneMlock, timing: o.dataplaneTiming },
    };
  }

  /**
   * The quick path of a planned restart: flannel0 and the UDP socket with the
   * subnet, config and peers saved at the last clean stop, forwarding before
   * etcd is even contacted. Only for the udp backend (the kernel backends'
   * forwarding never stopped). On any failure the start goes on cold.
   */
  private async warmStart(w: RestartState): Promise<void> {
    const o = this.opts;
    if (w.config.backendType !== 'udp') return;
    try {
      const backend = createBackend(w.config.backendType, this.backendContext());
      await backend.prepare(w.config);
      const table = new LeaseTable(w.config.port);
      table.setLocalSubnet(w.subnet);
      table.reset(w.peers.filter((l) => backend.accepts(l)));
      this.mtu = await backend.start({ subnet: w.subnet, publicIp: parseIp4(this.ext!.publicIp), backendType: backend.type }, w.config, table);
      this.backend = backend;
      this.table = table;
      this.lease = { subnet: w.subnet, publicIp: parseIp4(this.ext!.publicIp), backendType: backend.type };
      this.log.info(`Quick restart: forwarding on the ${table.size} leases known at the last stop (${Math.round((Date.now() - w.savedAt) / 1000)} s ago) while etcd confirms them`);
      if (this.subnetEnvConfirmed(w)) {
        await backend.forwarding; // the data-plane thread forwards (see start)
        this.markReady(`forwarding on the ${table.size} leases saved at the last stop; confirming with etcd`);
        this.log.info(`Ready on the saved leases (${o.subnetFile} confirmed); etcd confirms the lease next`);
      }
    } catch (e) {
      this.log.warn({ err: e }, `Quick restart not possible (${(e as Error).message}); starting cold`);
      await this.backend?.stop().catch(() => undefined);
      this.backend = undefined;
      this.table = undefined;
      this.lease = undefined;
    }
  }

  /** Whether subnet.env holds exactly what this warm start would write (then it is not rewritten before etcd answers). */
  private subnetEnvConfirmed(w: RestartState): boolean {
    try {
      const want = formatSubnetFile({ network: w.config.network, subnet: w.subnet, mtu: this.mtu, ipMasq: this.opts.ipMasq });
      return fs.readFileSync(this.opts.subnetFile, 'utf8') === want;
    } catch {
      return false;
    }
  }

  /**
   * /healthz, /readyz and /metrics. prom-client is loaded on the first
   * scrape or once the daemon is ready, whichever comes first: not on the
   * path that brings forwarding up.
   */
  private async startHealth(): Promise<void> {
    const o = this.opts;
    this.health = await startHealthServer({
      host: o.healthzIp,
      port: o.healthzPort,
      ready: () => this.ready,
      notReadyReason: () => (this.ready ? undefined : this.notReady),
      metrics: () => this.metrics().metrics(),
    });
    this.log.info(`Serving /healthz, /readyz and /metrics on ${o.healthzIp}:${this.health.port}`);
  }

  private metrics(): Registry {
    if (!this.metricsRegistry) {
      const { createMetrics } = require('./metrics') as typeof import('./metrics');
      this.metricsRegistry = createMetrics({
        counters: () => this.backend?.counters,
        table: () => this.table,
        batchSizes: () => this.backend?.batchSizes,
        dataPlane: () => this.backend?.dataPlaneStats,
        offloads: () => this.backend?.offloadsEnabled,
        control: () => ({
          etcdUp: this.sm?.etcdUp ?? false,
          leaseRenewals: this.sm?.stats.renewals ?? 0,
          leaseRenewFailures: this.sm?.stats.renewFailures ?? 0,
          watchResyncs: this.sm?.stats.resyncs ?? 0,
        }),
      });
    }
    return this.metricsRegistry;
  }

  /**
   * flannel's traffic rules, once the lease is known and before subnet.env
   * says whether flanneld masquerades, in the mode the network config names
   * (EnableNFTables: nftables, else iptables). The other mode's leftovers go
   * first. Then this start's flags are reconciled with what the last run left
   * (rules outlive a stop): the --ip-masq and --iptables-forward-rules sets are
   * made exactly as asked, and an unasked set an earlier run left is removed.
   * A failure stops the start with --ip-masq (pods would otherwise leave the
   * overlay unmasqueraded), else it is logged and the resync retries; then
   * the resync loop every --iptables-resync seconds.
   */
  private async startTraffic(): Promise<void> {
    const o = this.opts;
    const mode: TrafficMode = this.config!.enableNFTables ? 'nftables' : 'iptables';
    // No rules asked for and no tool for this mode: nothing of it can exist to reconcile.
    if (!o.ipMasq && !o.iptablesForwardRules && !onPath(mode === 'nftables' ? 'nft' : 'iptables-save')) return;
    if (mode === 'iptables') warnIfNoBrNetfilter(this.log);
    await removeLeftovers(mode, this.log);
    const t = (this.traffic = createTrafficManager(mode, { log: this.log, randomFully: o.ipMasqFullyRandomDisable ? false : undefined }));
    const network = this.config!.network.toString();
    try {
      await t.configure({
        masq: o.ipMasq ? { network, subnet: this.lease!.subnet.toString() } : undefined,
        forward: o.iptablesForwardRules ? { network } : undefined,
      });
    } catch (e) {
      // Without masquerade, pods would leave the overlay with their own addresses: stop the start.
      if (o.ipMasq) throw e;
      this.log.error({ err: e }, `Failed to set up flannel's ${t.mode} rules (retrying every ${o.iptablesResync} s): ${(e as Error).message}`);
    }
    if (o.ipMasq || o.iptablesForwardRules) t.startResync(o.iptablesResync);
  }

  private async writeSubnetEnv(): Promise<void> {
    await writeSubnetFile(this.opts.subnetFile, { network: this.config!.network, subnet: this.lease!.subnet, mtu: this.mtu, ipMasq: this.opts.ipMasq });
    this.log.info(`Wrote ${this.opts.subnetFile}`);
  }

  private leasesChanged(diff: LeaseDiff): void {
    for (const p of diff.added) this.log.info(`Subnet added: ${p.subnet} via ${formatIp4(p.publicIp)}`);
    for (const p of diff.changed) this.log.info(`Subnet changed: ${p.subnet} now via ${formatIp4(p.publicIp)}`);
    for (const p of diff.removed) this.log.info(`Subnet removed: ${p.subnet}`);
    try {
      this.backend!.leasesChanged(diff);
    } catch (e) {
      this.log.error({ err: e }, 'The backend could not apply a lease change');
    }
  }

  /** Our lease was re-acquired; if the subnet moved, the backend and subnet.env follow it. */
  private async leaseMoved(lease: Lease): Promise<void> {
    const old = this.lease!.subnet;
    this.lease = lease;
    if (lease.subnet.equals(old)) {
      this.log.info(`Lease ${lease.subnet} taken back after it was lost`);
      return;
    }
    this.log.warn(`Lease moved from ${old} to ${lease.subnet}: reconfiguring; pods on the old subnet must be re-created`);
    try {
      this.table!.setLocalSubnet(lease.subnet);
      await this.backend!.relocate(lease);
      await this.blackhole?.setSubnet(lease.subnet);
      if (this.opts.ipMasq) await this.traffic?.setMasq(this.config!.network.toString(), lease.subnet.toString());
      await this.writeSubnetEnv();
    } catch (e) {
      this.log.error({ err: e }, `Could not move to the new lease ${lease.subnet}`);
    }
  }

  /**
   * SIGHUP. flannel reads the network config only at start and so does
   * flanneld here; a reload re-reads it and says whether etcd now holds a
   * different one (a warning naming the fields: restart to apply), then
   * repairs this node's state from etcd without interrupting traffic: a full
   * lease resync (the table rebuilt from a fresh list; our own lease taken
   * back if it is gone), flannel0's address and route and the iptables rules
   * re-applied, and subnet.env rewritten. Before the daemon is ready there is
   * nothing to reload: it is still retrying by itself.
   */
  async reload(): Promise<void> {
    const sm = this.sm;
    const backend = this.backend;
    const lease = this.lease;
    if (!this.started || !sm || !backend || !lease) {
      this.log.warn(`SIGHUP: flanneld has not finished starting (${this.notReady || 'confirming the saved lease with etcd'}); nothing to reload, it keeps retrying by itself`);
      return;
    }
    this.log.info('SIGHUP: re-reading the network config and resyncing from etcd (the running config is kept)');
    try {
      await sm.recheckConfig();
    } catch (e) {
      this.log.warn({ err: e }, `SIGHUP: could not read the network config from etcd (${(e as Error).message}); keeping the running one`);
    }
    sm.resync();
    try {
      await backend.relocate(lease);
      await this.traffic?.ensure();
      await this.writeSubnetEnv();
    } catch (e) {
      this.log.error({ err: e }, `SIGHUP: could not re-apply this node's state: ${(e as Error).message}`);
      return;
    }
    this.log.info(`SIGHUP: done (lease ${lease.subnet}, ${this.table?.size ?? 0} peers before the resync)`);
  }

  /**
   * Stops forwarding and removes the backend's devices; keeps the lease in
   * etcd (flannel does). The masquerade and forward rules stay (upstream >=
   * 0.27): pods keep masquerading new connections while flanneld restarts,
   * and the next start reconciles them. `flannel-ts cleanup` removes them.
   */
  async stop(): Promise<void> {
    this.notifier.send(['STOPPING=1']);
    if (this.ready && this.backend?.type === 'udp' && this.lease && this.table && this.sm?.configText) {
      saveRestartState(this.opts.subnetFile, { publicIp: this.lease.publicIp, subnet: this.lease.subnet, configText: this.sm.configText, peers: this.table.peers() }, this.log);
    }
    this.ready = false;
    this.stopper.abort();
    await this.traffic?.stop();
    await this.blackhole?.stop();
    await this.admin?.close();
    await this.backend?.stop();
    await this.sm?.close();
    this.registry?.close();
    await this.health?.close();
  }
}
