// CNI errors as the spec defines them: a code, a message and optional
// details, printed as JSON on stdout with a non-zero exit. Codes 1-99 are the
// spec's; 999 is what the reference library (skel) reports for any other
// failure, and what a runtime sees from Go plugins, flannel's included.

export const CNI_CODES = {
  /** The config's cniVersion is not one this plugin speaks. */
  incompatibleVersion: 1,
  unsupportedField: 2,
  /** The container is unknown; the runtime need not clean up. */
  unknownContainer: 3,
  /** CNI_COMMAND, CNI_CONTAINERID, CNI_IFNAME... missing or malformed. */
  invalidEnvironment: 4,
  /** Reading or writing a file failed (dataDir, subnet.env). */
  ioFailure: 5,
  /** Content could not be decoded (the network config's JSON, subnet.env's values). */
  decodingFailure: 6,
  /** The network config is well-formed but wrong. */
  invalidNetworkConfig: 7,
  /** CNI_NETNS is the plugin's own namespace. */
  invalidNetns: 8,
  /** A transient condition: retry later (flanneld has not written subnet.env yet). */
  tryAgainLater: 11,
  /** Anything else (skel's ErrInternal). */
  internal: 999,
} as const;

export class CniError extends Error {
  constructor(
    readonly cniCode: number,
    readonly msg: string,
    readonly details = '',
  ) {
    super(details ? `${msg}; ${details}` : msg);
    this.name = 'CniError';
  }

  /** The error object the spec prints: cniVersion, code, msg and (if any) details. */
  toJSON(cniVersion: string): Record<string, unknown> {
    const o: Record<string, unknown> = { cniVersion, code: this.cniCode, msg: this.msg };
    if (this.details) o.details = this.details;
    return o;
  }
}

export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
