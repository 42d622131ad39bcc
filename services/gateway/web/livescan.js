// Live scan: while the camera is open, the page looks up a downscaled frame two to four times a second whenever the
// picture is steady, and stops at the first confident answer, so the visitor needs no shutter press. Nothing is
// sent while the phone moves: every SAMPLE_MS a tiny grey thumbnail of the preview is compared with the previous
// one, and a frame is sent only once STEADY_SAMPLES comparisons in a row found no movement. One look-up is in flight at a time; a busy gateway's Retry-After
// is honoured. The shutter stays as the fallback.

import { ApiError } from './api.js';
import { fitWithin, toJpeg } from './photo.js';

/** How often the preview is sampled for movement, ms. */
export const SAMPLE_MS = 125;
/** Least time between two frames sent, ms: at most four a second (fewer while a look-up takes longer). */
export const SEND_INTERVAL_MS = 250;
/** Longest side of a frame sent while scanning, pixels (the shutter sends 1024): a third of the bytes. */
export const SCAN_MAX_SIDE = 640;
/** JPEG quality of a scanned frame. */
export const SCAN_JPEG_QUALITY = 0.85;
/** Side of the grey thumbnail compared for movement, pixels. */
export const PROBE_SIDE = 24;
/** Mean absolute difference (0–255 grey levels) between two thumbnails below which the picture did not move. */
export const STEADY_DIFFERENCE = 6;
/** Samples in a row that must not have moved before a frame is sent: the picture is steady for 2 × SAMPLE_MS. */
export const STEADY_SAMPLES = 2;
/** Wait after a failed look-up without a Retry-After, ms. */
export const ERROR_BACKOFF_MS = 2000;

/** Mean absolute difference of two grey thumbnails of equal length; Infinity when there is no earlier one. */
export function frameDifference(previous, current) {
  if (!previous || previous.length !== current.length) return Infinity;
  let sum = 0;
  for (let i = 0; i < current.length; i += 1) sum += Math.abs(previous[i] - current[i]);
  return sum / current.length;
}

/** The preview's grey thumbnail (PROBE_SIDE × PROBE_SIDE, Uint8Array), or null before the first frame. */
function probe(video, canvas) {
  if (!video.videoWidth) return null;
  const context = canvas.getContext('2d', { willReadFrequently: true });
  context.drawImage(video, 0, 0, PROBE_SIDE, PROBE_SIDE);
  const rgba = context.getImageData(0, 0, PROBE_SIDE, PROBE_SIDE).data;
  const grey = new Uint8Array(PROBE_SIDE * PROBE_SIDE);
  for (let i = 0; i < grey.length; i += 1) {
    grey[i] = (rgba[4 * i] * 77 + rgba[4 * i + 1] * 150 + rgba[4 * i + 2] * 29) >> 8;
  }
  return grey;
}

/** The current preview frame, scaled to SCAN_MAX_SIDE, as a JPEG blob. */
async function scanFrame(video) {
  const size = fitWithin(video.videoWidth, video.videoHeight, SCAN_MAX_SIDE);
  const canvas = Object.assign(document.createElement('canvas'), size);
  canvas.getContext('2d').drawImage(video, 0, 0, size.width, size.height);
  return toJpeg(canvas, SCAN_JPEG_QUALITY);
}

/**
 * Scans `video` until stopped. `identify(blob, signal)` looks a frame up; `found(answer, blob)` is called once, with
 * the first answer that has a match, after which the scan has stopped; `status(kind)` is told 'moving' or
 * 'looking' when that changes. `sent` counts the frames sent (the tests read it).
 */
export class LiveScan {
  constructor(video, { identify, found, status = () => {} }) {
    this.video = video;
    this.identify = identify;
    this.found = found;
    this.status = status;
    this.sent = 0;
    this.running = false;
    this.timer = null;
    this.controller = null;
    this.previous = null;
    this.still = 0; // samples in a row that did not move
    this.notBefore = 0;
    this.shown = null;
    this.canvas = Object.assign(document.createElement('canvas'), { width: PROBE_SIDE, height: PROBE_SIDE });
  }

  /** Start sampling (idempotent). */
  start() {
    if (this.running) return;
    this.running = true;
    this.schedule();
  }

  /** Stop sampling and abandon a look-up in flight (idempotent). */
  stop() {
    this.running = false;
    clearTimeout(this.timer);
    this.controller?.abort();
    this.controller = null;
  }

  schedule() {
    if (this.running) this.timer = setTimeout(() => this.tick(), SAMPLE_MS);
  }

  tell(kind) {
    if (kind !== this.shown) this.status(kind);
    this.shown = kind;
  }

  tick() {
    if (!this.running) return;
    const current = probe(this.video, this.canvas);
    const moved = current === null || frameDifference(this.previous, current) >= STEADY_DIFFERENCE;
    this.still = moved ? 0 : this.still + 1;
    const steady = this.still >= STEADY_SAMPLES;
    this.previous = current;
    if (current !== null) this.tell(steady ? 'looking' : 'moving');
    if (steady && !this.controller && performance.now() >= this.notBefore) this.send();
    this.schedule();
  }

  async send() {
    const controller = new AbortController();
    this.controller = controller;
    this.notBefore = performance.now() + SEND_INTERVAL_MS;
    try {
      const blob = await scanFrame(this.video);
      if (controller.signal.aborted) return;
      this.sent += 1;
      const answer = await this.identify(blob, controller.signal);
      if (this.running && !controller.signal.aborted && answer.match) {
        this.stop();
        this.found(answer, blob);
      }
    } catch (error) {
      if (error.name === 'AbortError') return;
      // A busy or failing gateway: wait as it asks (or a little), then go on scanning; the shutter still works.
      const wait = error instanceof ApiError ? Number(error.retryAfter) * 1000 : NaN;
      this.notBefore = performance.now() + (Number.isFinite(wait) && wait > 0 ? wait : ERROR_BACKOFF_MS);
    } finally {
      if (this.controller === controller) this.controller = null;
    }
  }
}
