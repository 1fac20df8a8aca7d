export * from './conf';
export * from './errors';
export * from './version';
export { runPlugin, main } from './plugin';
export type { PluginInput, PluginOutput } from './plugin';
export { CniRuntime, CniInvokeError, resultIp4, resultHostVeth } from './runtime';
export type { ConfList, RuntimeConf, CniResult } from './runtime';
