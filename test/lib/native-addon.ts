// The addon for unit tests that call into C, or the reason to skip them: a
// checkout without `npm ci` has no build, and those tests say so rather than fail.

import { type FlannelTunNative, native } from '../../src/tun/native';

export function nativeOrSkip(): { addon: FlannelTunNative | undefined; skip: string | false } {
  try {
    return { addon: native(), skip: false };
  } catch {
    return { addon: undefined, skip: 'native addon not built (npm ci)' };
  }
}
