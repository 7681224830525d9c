/** Kubernetes-shaped errors: every failure the API double reports is a meta/v1 Status. */

/** One field-level cause of an Invalid error (metav1.StatusCause). */
export interface StatusCause {
  reason: string;
  message: string;
  field: string;
}

/** Identifies the object an error is about, for Status.details. */
export interface ErrorTarget {
  group: string;
  kind: string;
  name?: string;
}

/** A failure carrying the HTTP code and the Status reason the real apiserver would use. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly target?: ErrorTarget,
    readonly causes?: StatusCause[],
  ) {
    super(message);
  }

  /** The meta/v1 Status body for this error. */
  toStatus(): Record<string, unknown> {
    const details: Record<string, unknown> = {};
    if (this.target) {
      if (this.target.name !== undefined) details['name'] = this.target.name;
      details['group'] = this.target.group;
      details['kind'] = this.target.kind;
    }
    if (this.causes?.length) details['causes'] = this.causes;
    return {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: this.message,
      reason: this.reason,
      ...(Object.keys(details).length ? { details } : {}),
      code: this.code,
    };
  }
}

/** `<resource>.<group> "<name>"` as the real server words it. */
function qualified(t: ErrorTarget, resource: string): string {
  return t.group ? `${resource}.${t.group}` : resource;
}

/** 404 NotFound. */
export function notFound(t: ErrorTarget, resource: string): ApiError {
  return new ApiError(404, 'NotFound', `${qualified(t, resource)} "${t.name ?? ''}" not found`, t);
}

/** 409 AlreadyExists. */
export function alreadyExists(t: ErrorTarget, resource: string): ApiError {
  return new ApiError(409, 'AlreadyExists', `${qualified(t, resource)} "${t.name ?? ''}" already exists`, t);
}

/** 409 Conflict on a stale resourceVersion. */
export function conflict(t: ErrorTarget, resource: string): ApiError {
  return new ApiError(
    409,
    'Conflict',
    `Operation cannot be fulfilled on ${qualified(t, resource)} "${t.name ?? ''}": the object has been modified; please apply your changes to the latest version and try again`,
    t,
  );
}

/** 422 Invalid with per-field causes. */
export function invalid(t: ErrorTarget, causes: StatusCause[]): ApiError {
  const kindName = t.group ? `${t.kind}.${t.group}` : t.kind;
  const list = causes.map((c) => `${c.field}: ${c.message}`);
  const text = list.length === 1 ? list[0]! : `[${list.join(', ')}]`;
  return new ApiError(422, 'Invalid', `${kindName} "${t.name ?? ''}" is invalid: ${text}`, t, causes);
}

/** 400 BadRequest. */
export function badRequest(message: string): ApiError {
  return new ApiError(400, 'BadRequest', message);
}

/** 410 Gone for a compacted resourceVersion. */
export function gone(message: string): ApiError {
  return new ApiError(410, 'Expired', message);
}

/** 405 MethodNotAllowed. */
export function methodNotAllowed(message: string): ApiError {
  return new ApiError(405, 'MethodNotAllowed', message);
}
