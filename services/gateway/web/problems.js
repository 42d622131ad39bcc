// Errors in the visitor's words, each with what to try next.

import { ApiError } from './api.js';
import { PhotoError } from './photo.js';

const RETAKE = 'Please take the photo again, or choose a different one.';

const BY_CODE = {
  invalid_image: { title: "We couldn't read that photo", hint: RETAKE },
  bad_request: { title: "We couldn't read that photo", hint: RETAKE },
  validation_error: { title: "We couldn't read that photo", hint: RETAKE },
  unsupported_media_type: {
    title: "That kind of file isn't supported",
    hint: 'Please use a JPEG, PNG or WebP photo.',
  },
  payload_too_large: { title: 'That photo is too large', hint: 'Please choose a smaller photo.' },
  image_too_large: { title: 'That photo is too large', hint: 'Please choose a smaller photo.' },
};

/** `{title, hint, detail}` for any error of a look-up. */
export function describeProblem(error) {
  if (error instanceof PhotoError) {
    return {
      title: "That file isn't a photo we can open",
      hint: 'Please choose a JPEG, PNG or WebP photo, or use the camera.',
      detail: error.message,
    };
  }
  if (!(error instanceof ApiError)) {
    return { title: 'Something went wrong', hint: 'Please try again.', detail: String(error?.message || error) };
  }
  const detail = error.message;
  if (error.status === 0) {
    return {
      title: "We couldn't reach the museum's server",
      hint: "Check that you're connected to the museum's Wi-Fi, then try again.",
      detail,
    };
  }
  if (error.status === 429) {
    const wait = Number(error.retryAfter) > 0 ? `${Number(error.retryAfter)} seconds` : 'a moment';
    return { title: 'Lots of visitors right now', hint: `Please wait ${wait}, then try again.`, detail };
  }
  if (error.status >= 400 && error.status < 500) {
    const known = BY_CODE[error.code] || { title: "That photo didn't work", hint: RETAKE };
    return { ...known, detail };
  }
  return {
    title: 'The recognition service is having trouble',
    hint: 'This is not your photo. Please try again in a minute.',
    detail,
  };
}
