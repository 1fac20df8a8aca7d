export { IptablesManager, IptablesError, systemRunner } from './manager';
export type { IptablesLogger, IptablesManagerOptions, IptablesRunner } from './manager';
export * from './rules';
