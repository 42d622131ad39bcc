// Client-side downscale: the pipeline looks at 1024 px on the longest side, so sending more only costs the
// visitor's data plan. Re-encoding also drops the photo's metadata (location, camera) before it leaves the phone.

import { t } from './i18n.js';

export const MAX_SIDE = 1024;
export const JPEG_QUALITY = 0.9;

/** A photo the browser cannot open (not an image, or a format it cannot decode); `key` and `args` say why. */
export class PhotoError extends Error {
  constructor(key, args = {}) {
    super(t(key, args));
    this.name = 'PhotoError';
    this.key = key;
    this.args = args;
  }
}

/** The size of a `width` × `height` image scaled so that its longer side is at most `maxSide`. */
export function fitWithin(width, height, maxSide = MAX_SIDE) {
  const scale = Math.min(1, maxSide / Math.max(width, height));
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) };
}

/** Draw `source` (an ImageBitmap or a video) scaled down onto a new canvas. */
export function drawScaled(source, width, height) {
  const size = fitWithin(width, height);
  const canvas = Object.assign(document.createElement('canvas'), size);
  const context = canvas.getContext('2d');
  context.imageSmoothingQuality = 'high';
  context.drawImage(source, 0, 0, size.width, size.height);
  return canvas;
}

/** The canvas as a JPEG blob (`quality` 0–1). */
export async function toJpeg(canvas, quality = JPEG_QUALITY) {
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, 'image/jpeg', quality));
  if (!blob) throw new PhotoError('photo.unencodable');
  return blob;
}

/** A chosen or dropped file as a downscaled JPEG; EXIF orientation is applied. */
export async function fromFile(file) {
  if (file.type && !file.type.startsWith('image/')) throw new PhotoError('photo.notImage', { name: file.name });
  let bitmap;
  try {
    bitmap = await createImageBitmap(file, { imageOrientation: 'from-image' });
  } catch {
    throw file.name
      ? new PhotoError('photo.unopenable', { name: file.name })
      : new PhotoError('photo.unopenableUnnamed');
  }
  try {
    return await toJpeg(drawScaled(bitmap, bitmap.width, bitmap.height));
  } finally {
    bitmap.close();
  }
}

/** The current frame of a playing camera preview, scaled down; encode it with `toJpeg` once the camera stops. */
export function grabFrame(video) {
  if (!video.videoWidth) throw new PhotoError('photo.noFrame');
  return drawScaled(video, video.videoWidth, video.videoHeight);
}
