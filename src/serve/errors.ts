/**
 * The server's errors in OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`, with
 * the HTTP status they go out with. A Llama2Error from the engine (a user mistake, e.g. a dialog
 * that breaks the chat format) becomes a 400; anything else is a 500 whose message names no
 * internals (the details go to the server's stderr).
 *
 * What it is not: request validation (schemas.ts).
 */
import { Llama2Error } from '../util/errors.js';

export type ErrorType = 'invalid_request_error' | 'authentication_error' | 'rate_limit_error' | 'not_found_error' | 'server_error' | 'not_implemented_error' | 'unavailable_error';

const TYPE_OF_STATUS: Record<number, ErrorType> = { 401: 'authentication_error', 404: 'not_found_error', 429: 'rate_limit_error', 501: 'not_implemented_error', 503: 'unavailable_error' };

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  get type(): ErrorType {
    return TYPE_OF_STATUS[this.status] ?? (this.status >= 500 ? 'server_error' : 'invalid_request_error');
  }

  body(): { error: { message: string; type: ErrorType; param: string | null; code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** Any thrown value as an ApiError (a Llama2Error is the client's mistake: 400 naming `param`). */
export function toApiError(e: unknown, param: string | null = null): ApiError {
  if (e instanceof ApiError) return e;
  if (e instanceof Llama2Error) return new ApiError(400, e.message, param);
  process.stderr.write(`llama2 serve: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  return new ApiError(500, 'internal server error (details in the server log)');
}
