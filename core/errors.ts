/**
 * The one error hierarchy. Classes are recognised by `name`, not `instanceof`, because an
 * error may come from another copy of this module (a DAG folder with its own install).
 */
export class HubflowError extends Error {
  readonly retryable: boolean;
  constructor(message: string, options: { cause?: unknown; retryable?: boolean } = {}) {
    super(message, { cause: options.cause });
    this.name = new.target.name;
    this.retryable = options.retryable ?? false;
  }
}

/** Transient trouble (network, lock timeout, deadlock): the task goes back through backoff. */
export class RetryableError extends HubflowError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, { ...options, retryable: true });
  }
}

/** Validation, schema mismatch, tenant violation: retrying cannot help, so the task fails at once. */
export class PermanentError extends HubflowError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, { ...options, retryable: false });
  }
}

/**
 * Airflow's AirflowSkipException: the task decided, deliberately, not to do its work. Its
 * instance ends `skipped` with this reason recorded (never retried), and downstream tasks
 * follow their trigger rules. A skip is not a failure: it leaves the run green, so throw it
 * only when nothing is lost by not doing the work.
 */
export class SkipTaskError extends HubflowError {
  constructor(reason: string, options: { cause?: unknown } = {}) {
    super(reason, { ...options, retryable: false });
  }
}

/** Whether a thrown value is a deliberate skip (by name: it may come from another copy of this module). */
export const isSkip = (err: unknown): err is Error => err instanceof Error && err.name === 'SkipTaskError';

/** The task ran past its `timeoutMs`; its AbortSignal fired. Retried like any transient error. */
export class TaskTimeoutError extends RetryableError {}

/** The task's run was cancelled while it ran; its AbortSignal fired with this. Never retried. */
export class TaskCancelledError extends HubflowError {}

/** A DAG or resource declaration that is wrong, naming its field; the loader adds the file. */
export class SpecError extends Error {
  override name = 'SpecError';
  constructor(
    readonly kind: 'dag' | 'resource',
    readonly id: string | undefined,
    readonly field: string,
    readonly problem: string,
  ) {
    super(`${kind} ${id ? `'${id}'` : '(unknown id)'}: ${field}: ${problem}`);
  }
}

/** A DAG file that cannot be loaded: names the file, the DAG (or resource) and the field. */
export class DagDefinitionError extends HubflowError {
  constructor(
    readonly file: string,
    readonly dagId: string | undefined,
    readonly field: string,
    readonly problem: string,
    readonly kind: 'dag' | 'resource' = 'dag',
  ) {
    super(`${file}: ${kind} ${dagId ? `'${dagId}'` : '(unknown id)'}: ${field}: ${problem}`);
  }
}

/** A request the engine refuses (unknown DAG, run or task; a duplicate logical date). */
export class NotFoundError extends HubflowError {}
export class ConflictError extends HubflowError {}
/** A value the engine refuses as given (a run's conf the store cannot keep, a backfill too large), naming it. */
export class InvalidInputError extends HubflowError {}

const PERMANENT_NAMES = new Set(['PermanentError', 'UnrecoverableError', 'DagDefinitionError', 'SpecError', 'SkipTaskError']);

/**
 * Whether a thrown value should be retried. Unknown errors are retried (a task author who
 * knows better throws PermanentError); only those that say so fail at once.
 */
export function isRetryable(err: unknown): boolean {
  if (err instanceof Error) {
    if (PERMANENT_NAMES.has(err.name)) return false;
    const retryable = (err as { retryable?: unknown }).retryable;
    if (typeof retryable === 'boolean') return retryable;
  }
  // Whatever its SQLSTATE: a conflict or an outage is worth another try, and a task whose SQL
  // is wrong fails once its tries are spent (core/sqlstate.ts says what each class means).
  return true;
}

/** A plain, JSON-safe description of an error for the store and the API. */
export function describeError(err: unknown): { name: string; message: string; stack?: string } {
  if (err instanceof Error) return { name: err.name, message: err.message, stack: err.stack };
  // An error already described (read back from the store as JSON) keeps its own words.
  if (typeof err === 'object' && err !== null && typeof (err as { message?: unknown }).message === 'string') {
    const { name, message, stack } = err as { name?: unknown; message: string; stack?: unknown };
    return { name: typeof name === 'string' ? name : 'Error', message, ...(typeof stack === 'string' ? { stack } : {}) };
  }
  return { name: 'Error', message: typeof err === 'object' && err !== null ? JSON.stringify(err) : String(err) };
}
