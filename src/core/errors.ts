// Typed errors with an RFC 6120 condition: handlers throw them, the router turns
// them into <error/> elements and chat turns them into a sentence. Never match on text.

export type Condition =
  | 'bad-request'
  | 'forbidden'
  | 'item-not-found'
  | 'not-allowed'
  | 'internal-server-error'
  | 'service-unavailable'
  | 'feature-not-implemented'
  | 'resource-constraint'
  | 'not-acceptable'
  | 'remote-server-timeout';

export type ErrorType = 'auth' | 'cancel' | 'continue' | 'modify' | 'wait';

/** RFC 6120 §8.3.3: the error type that goes with each condition. */
export const DEFAULT_TYPE: Record<Condition, ErrorType> = {
  'bad-request': 'modify',
  forbidden: 'auth',
  'item-not-found': 'cancel',
  'not-allowed': 'cancel',
  'internal-server-error': 'cancel',
  'service-unavailable': 'cancel',
  'feature-not-implemented': 'cancel',
  'resource-constraint': 'wait',
  'not-acceptable': 'modify',
  'remote-server-timeout': 'wait',
};

/** An application-specific condition element (RFC 6120 §8.3.4), as plain data. */
export interface AppCondition {
  name: string;
  xmlns: string;
  attrs?: Record<string, string>;
  text?: string;
}

export class StanzaError extends Error {
  readonly type: ErrorType;
  constructor(
    readonly condition: Condition,
    /** Human text; safe to show to the requester. */
    readonly text?: string,
    opts: { type?: ErrorType; app?: AppCondition } = {},
  ) {
    super(text ? `${condition}: ${text}` : condition);
    this.name = 'StanzaError';
    this.type = opts.type ?? DEFAULT_TYPE[condition];
    this.app = opts.app;
  }
  readonly app?: AppCondition;
}

export function isStanzaError(err: unknown): err is StanzaError {
  return err instanceof StanzaError;
}
