export { IptablesManager, IptablesError, systemRunner } from './manager';
export type { IptablesManagerOptions, IptablesRunner } from './manager';
export * from './rules';
