// Errors in the visitor's words, each with what to try next. A problem names its messages by key (problem.<kind>.title
// and .hint in lang-*.js), so its panel is shown, and re-shown after a language switch, in the visitor's language.

import { ApiError } from './api.js';
import { PhotoError } from './photo.js';

/**
 * The kind of problem for each of the gateway's machine-readable error codes (services/common/errors.py; a test
 * keeps the two in step). Codes the gateway does not send today map too, should a future version send them.
 */
export const KIND_BY_CODE = {
  bad_request: 'unreadable',
  invalid_image: 'unreadable',
  validation_error: 'unreadable',
  unsupported_media_type: 'format',
  payload_too_large: 'tooLarge',
  image_too_large: 'tooLarge',
  unauthorized: 'notAllowed',
  forbidden: 'notAllowed',
  not_found: 'photo',
  conflict: 'photo',
  rate_limited: 'busy',
  overloaded: 'busy',
  backend_error: 'server',
  backend_unavailable: 'server',
  internal_error: 'server',
  backend_timeout: 'slow',
  not_ready: 'starting',
};

function apiKind(error) {
  if (error.status === 0) return 'offline';
  if (error.status === 429) return 'busy';
  return KIND_BY_CODE[error.code] || (error.status >= 400 && error.status < 500 ? 'photo' : 'server');
}

/**
 * `{title, hint, args, detail}` for any error of a look-up: title and hint are message keys, `args` fills them in;
 * `detail` is the small print, a message `{key, args}` or the `{text}` the server or the browser gave (English).
 */
export function describeProblem(error) {
  if (error instanceof PhotoError) {
    return { ...messagesOf('notAPhoto'), detail: { key: error.key, args: error.args } };
  }
  if (!(error instanceof ApiError)) {
    return { ...messagesOf('unknown'), detail: { text: String(error?.message || error) } };
  }
  const kind = apiKind(error);
  const problem = { ...messagesOf(kind), detail: { text: error.message } };
  const wait = Number(error.retryAfter);
  if (kind === 'busy' && Number.isFinite(wait) && wait > 0) {
    return { ...problem, hint: 'problem.busy.hintWait', args: { count: Math.ceil(wait) } };
  }
  return problem;
}

function messagesOf(kind) {
  return { title: `problem.${kind}.title`, hint: `problem.${kind}.hint`, args: {} };
}
