// Errors of the control plane. Each carries a stable `code` that callers (the
// daemon, tests, log scrapers) can match on; the message says what to fix.

import { FlannelError, errorMessage } from '../util/errors';

export type SubnetErrorCode =
  | 'FLANNEL_ERR_CONFIG' // the network config in etcd is invalid (see `field`)
  | 'FLANNEL_ERR_CONFIG_MISSING' // no network config at <prefix>/config yet
  | 'FLANNEL_ERR_ETCD' // an etcd request failed (unreachable, timeout, denied)
  | 'FLANNEL_ERR_ETCD_OPTIONS' // the registry options are unusable (endpoints, TLS files)
  | 'FLANNEL_ERR_OPTIONS' // a SubnetManager option is out of range
  | 'FLANNEL_ERR_SUBNET_EXHAUSTED' // no free subnet left in [SubnetMin, SubnetMax]
  | 'FLANNEL_ERR_LEASE_RACE' // lost the create race too many times in a row
  | 'FLANNEL_ERR_SUBNET_FILE'; // subnet.env could not be written

export class SubnetError extends FlannelError {
  declare readonly code: SubnetErrorCode;
  constructor(code: SubnetErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'SubnetError';
  }
}

/**
 * The network config is invalid. `field` names the offending JSON key as the
 * operator writes it ("SubnetLen", "Backend.Port", ...), or "" for the
 * document as a whole (malformed JSON).
 */
export class ConfigError extends SubnetError {
  readonly field: string;
  constructor(field: string, message: string) {
    super('FLANNEL_ERR_CONFIG', message);
    this.name = 'ConfigError';
    this.field = field;
  }
}

/** An etcd request failed; `cause` is the etcd3 client's error. */
export class RegistryError extends SubnetError {
  constructor(message: string, options?: { cause?: unknown; code?: 'FLANNEL_ERR_ETCD' | 'FLANNEL_ERR_ETCD_OPTIONS' }) {
    super(options?.code ?? 'FLANNEL_ERR_ETCD', message, { cause: options?.cause });
    this.name = 'RegistryError';
  }
}

export { errorMessage };
