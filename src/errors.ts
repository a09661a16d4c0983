/** Every error code this package throws; stable across releases. */
export const ERROR_CODES = [
  'ERR_ARGV_EMPTY',
  'ERR_ARGV_MISSING_VALUE',
  'ERR_ARGV_MISSING_ID',
  'ERR_ARGV_INVALID_ID',
  /** more argv than execve(2) allows or than could be read: its container id cannot be trusted */
  'ERR_ARGV_TRUNCATED',
  'ERR_SPEC_RELATIVE_BUNDLE',
  'ERR_SPEC_NOT_FOUND',
  'ERR_SPEC_SYMLINK',
  'ERR_SPEC_NOT_REGULAR',
  'ERR_SPEC_ACCESS',
  'ERR_SPEC_READ',
  'ERR_SPEC_SLOW',
  'ERR_SPEC_TOO_LARGE',
  'ERR_SPEC_EMPTY',
  'ERR_SPEC_NOT_UTF8',
  'ERR_SPEC_TOO_DEEP',
  'ERR_SPEC_INVALID_JSON',
  'ERR_SPEC_NOT_OBJECT',
  /** neither eBPF nor fanotify permission events can run here (the message says why) */
  'ERR_NO_MECHANISM',
  /** the native addon is not built, or not for this platform */
  'ERR_ADDON_MISSING',
  /** a --metrics address that is malformed or not loopback */
  'ERR_METRICS_ADDRESS',
  /** a --metrics address that cannot be listened on */
  'ERR_METRICS_LISTEN',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export type ArgvErrorCode = Extract<ErrorCode, `ERR_ARGV_${string}`>;
export type SpecErrorCode = Extract<ErrorCode, `ERR_SPEC_${string}`>;

export type ErrorDetails = Readonly<Record<string, unknown>>;

export class OciNotifyError extends Error {
  readonly code: ErrorCode;
  readonly details: ErrorDetails | undefined;

  constructor(code: ErrorCode, message: string, details?: ErrorDetails, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.details = details;
  }
}

/** A runtime's argv that cannot be what the runtime itself would accept. */
export class ArgvError extends OciNotifyError {
  declare readonly code: ArgvErrorCode;

  constructor(code: ArgvErrorCode, message: string, details?: ErrorDetails) {
    super(code, message, details);
  }
}

/** A bundle's config.json that cannot be located, read or parsed. */
export class SpecError extends OciNotifyError {
  declare readonly code: SpecErrorCode;

  constructor(code: SpecErrorCode, message: string, details?: ErrorDetails, options?: ErrorOptions) {
    super(code, message, details, options);
  }
}
