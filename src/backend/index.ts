// Backend.Type → backend. The config validator (src/subnet/backends.ts) decides
// which types are accepted; this maps each accepted type to its code.

import type { Backend, BackendContext } from './backend';
import { HostGwBackend } from './hostgw/hostgw-backend';
import { UdpBackend } from './udp/udp-backend';
import { VxlanBackend } from './vxlan/vxlan-backend';
import { FlannelError } from '../util/errors';

const FACTORIES: Record<string, (ctx: BackendContext) => Backend> = {
  udp: (ctx) => new UdpBackend(ctx),
  vxlan: (ctx) => new VxlanBackend(ctx),
  'host-gw': (ctx) => new HostGwBackend(ctx),
};

export function createBackend(type: string, ctx: BackendContext): Backend {
  const make = FACTORIES[type];
  if (!make) throw new FlannelError('FLANNEL_ERR_CONFIG', `Backend.Type "${type}" has no implementation in flannel-ts`);
  return make(ctx);
}

export { Backend, BackendContext } from './backend';
