// CNI spec versions: which ones the plugin speaks and how they compare, as
// the reference library (pkg/version) compares them.

/** The spec versions flannel-ts's plugin implements (ADD, DEL, VERSION; CHECK from 0.4.0). */
export const SUPPORTED_VERSIONS = ['0.3.1', '0.4.0', '1.0.0'] as const;
/** The version VERSION reports itself in. */
export const CURRENT_VERSION = '1.0.0';

/** [major, minor, micro]; "" is 0.1.0 (a config without cniVersion). Throws on garbage. */
export function parseVersion(v: string): [number, number, number] {
  if (v === '') return [0, 1, 0];
  const parts = v.split('.');
  if (parts.length > 3) throw new Error(`invalid version "${v}": too many parts`);
  const n = parts.map((p) => {
    if (!/^[+-]?\d+$/.test(p)) throw new Error(`invalid version "${v}": "${p}" is not a number`);
    return Number(p);
  });
  return [n[0], n[1] ?? 0, n[2] ?? 0];
}

/** a >= b. */
export function versionAtLeast(a: string, b: string): boolean {
  const x = parseVersion(a);
  const y = parseVersion(b);
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i] > y[i];
  return true;
}

export function isSupported(v: string): boolean {
  return (SUPPORTED_VERSIONS as readonly string[]).includes(v);
}

export function versionInfo(): { cniVersion: string; supportedVersions: string[] } {
  return { cniVersion: CURRENT_VERSION, supportedVersions: [...SUPPORTED_VERSIONS] };
}
