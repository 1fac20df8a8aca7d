// The one base class for flannel-ts's own errors. Every error the product
// raises on purpose carries a stable `code` (FLANNEL_ERR_…) that callers, tests
// and log scrapers match on, and a message that says what to fix. The README's
// "Error codes" table lists every code; test/unit/error-codes.test.ts keeps the
// two in step.

export type FlannelErrorCode = `FLANNEL_ERR_${string}`;

export class FlannelError extends Error {
  readonly code: FlannelErrorCode;
  constructor(code: FlannelErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'FlannelError';
    this.code = code;
  }
}

/** An error's message, or the thrown value as text when it is not an Error. */
export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** The FLANNEL_ERR_… code of a thrown value, if it has one. */
export function errorCode(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}
