// The gateway's public API: POST /identify (multipart) and GET /objects/{id}.

/** A failed call; `status` is 0 when the server could not be reached. Fields follow the API's error body. */
export class ApiError extends Error {
  constructor(status, body, retryAfter = null) {
    super(body?.message || `HTTP ${status}`);
    this.name = 'ApiError';
    this.status = status;
    this.code = body?.error || (status ? 'http_error' : 'network_error');
    this.details = body?.details || {};
    this.retryAfter = retryAfter;
  }
}

/** Identify the artworks in a photo; resolves to the IdentifyResponse body, rejects with ApiError. */
export async function identify(photo, signal) {
  const form = new FormData();
  form.append('image', photo, 'photo.jpg');
  let response;
  try {
    response = await fetch('/identify', { method: 'POST', body: form, signal });
  } catch (error) {
    if (error.name === 'AbortError') throw error;
    throw new ApiError(0, { message: error.message });
  }
  const body = await response.json().catch(() => null);
  if (!response.ok || !body) throw new ApiError(response.status, body, response.headers.get('Retry-After'));
  return body;
}

/** One artwork's catalogue entry (it has the room), or null when it cannot be had. */
export async function fetchObject(objectId) {
  try {
    const response = await fetch(`/objects/${encodeURIComponent(objectId)}`);
    return response.ok ? await response.json() : null;
  } catch {
    return null;
  }
}
