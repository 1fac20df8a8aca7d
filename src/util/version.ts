// flannel-ts's version, read from package.json at run time.
//
// The compiled file lives in dist/src/util/, the source in src/util/; rather than
// hard-code either depth, walk up from this file to the first package.json
// whose name is "flannel-ts". Read once, on first use.

import * as fs from 'node:fs';
import * as path from 'node:path';

const PACKAGE_NAME = 'flannel-ts';

let cached: string | undefined;

/** The `version` field of flannel-ts's package.json, e.g. "0.1.0"; "unknown" if it cannot be found. */
export function version(): string {
  if (cached !== undefined) return cached;
  cached = 'unknown';
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    try {
      const pkg = JSON.parse(fs.readFileSync(file, 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === PACKAGE_NAME && typeof pkg.version === 'string') {
        cached = pkg.version;
        break;
      }
    } catch {
      // no package.json here, or not JSON: keep walking up
    }
    if (path.dirname(dir) === dir) break;
  }
  return cached;
}

/**
 * What `flanneld --version` prints (flanneld prints its version alone, e.g.
 * "v0.26.0", to stderr). The leading "v" keeps scripts that match v\d+\.\d+
 * working; the suffix says which implementation this is.
 */
export function versionText(): string {
  return `v${version()} (flannel-ts)`;
}
