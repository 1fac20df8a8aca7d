// The control plane's public face: what src/cli imports.

export { NetworkConfig, ParsedConfig, parseNetworkConfig } from './config';
export { SUPPORTED_BACKENDS, FLANNEL_ONLY_BACKENDS, UDP_DEFAULT_PORT, supportedBackendTypes } from './backends';
export { SubnetError, SubnetErrorCode, ConfigError, RegistryError } from './errors';
export { Logger, silentLogger } from '../util/log';
export { LeaseAttrs, formatLeaseValue, parseLeaseValue } from './lease-value';
export {
  SubnetRange,
  subnetKey,
  parseSubnetKey,
  firstAddress,
  isSubnetCompatible,
  subnetCount,
  freeSubnetCount,
  pickFreeSubnet,
} from './subnets';
export { SubnetFileValues, formatSubnetFile, writeSubnetFile, readSubnetFile } from './subnet-env';
export {
  DEFAULT_PREFIX,
  LEASE_TTL_SEC,
  EtcdRegistry,
  RegistryOptions,
  RegistryLease,
  LeaseList,
  LeaseWatch,
  LeaseWatchHandlers,
  SubnetRegistry,
} from './registry';
export { acquireSubnetLease, AcquireParams } from './acquire';
export { SubnetManager, SubnetManagerOptions } from './subnet-manager';
