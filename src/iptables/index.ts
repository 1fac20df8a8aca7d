export { IptablesManager, IptablesError, systemRunner, inSync } from './manager';
export type { IptablesManagerOptions, IptablesRunner } from './manager';
export { NftablesManager, NftablesError, systemNftRunner, renderTable, normalizeListing, replaceScript, NFT_TABLE } from './nftables';
export type { NftRunner, NftDesired } from './nftables';
export type { TrafficManager, TrafficMode, TrafficDesired } from './traffic';
export { createTrafficManager, removeLeftovers } from './select';
export * from './rules';
