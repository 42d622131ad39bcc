// The rear camera as a live preview in a <video> element.

/** Whether this browser can show a camera preview here (it needs a secure context: https or localhost). */
export function cameraSupported() {
  return Boolean(navigator.mediaDevices?.getUserMedia);
}

/** Start the rear camera (any camera where there is no rear one) in `video`; resolves once frames arrive. */
export async function startCamera(video) {
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: false,
    video: { facingMode: { ideal: 'environment' }, width: { ideal: 1920 }, height: { ideal: 1080 } },
  });
  video.srcObject = stream;
  try {
    await video.play();
  } catch (error) {
    stopCamera(video);
    throw error;
  }
}

/** Stop the camera (the phone's camera light goes off). */
export function stopCamera(video) {
  const stream = video.srcObject;
  if (stream) stream.getTracks().forEach((track) => track.stop());
  video.srcObject = null;
}

/** Whether the camera is running in `video`. */
export function cameraRunning(video) {
  return Boolean(video.srcObject);
}

/** The message key of what to tell the visitor when the camera cannot start. */
export function cameraProblem(error) {
  switch (error?.name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return 'camera.notAllowed';
    case 'NotFoundError':
    case 'OverconstrainedError':
      return 'camera.notFound';
    case 'NotReadableError':
      return 'camera.busy';
    default:
      return 'camera.failed';
  }
}
