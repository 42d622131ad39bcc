// The visitor page: take or choose a photo, send it to /identify, show what it is.
// The page's state is on <body data-state="idle|camera|busy|result|nomatch|error"> (CSS shows what fits).

import { fetchObject, identify } from './api.js';
import { cameraProblem, cameraRunning, cameraSupported, startCamera, stopCamera } from './camera.js';
import { startLanguages, translate } from './i18n.js';
import { LiveScan } from './livescan.js';
import { fromFile, grabFrame, toJpeg } from './photo.js';
import { describeProblem } from './problems.js';
import { setCatalogueDetails, showBusy, showFound, showNoMatch, showProblem } from './render.js';

const $ = (id) => document.getElementById(id);
const ui = {
  viewfinder: $('viewfinder'),
  video: $('video'),
  preview: $('preview'),
  cameraStart: $('camera-start'),
  shutter: $('shutter'),
  cameraStop: $('camera-stop'),
  file: $('file'),
  cameraNote: $('camera-note'),
  scanStatus: $('scan-status'),
  result: $('result'),
  language: $('language'),
};

let lookup = null; // AbortController of the look-up in flight
let scan = null; // the live scan while the camera is open
// ?scan=off keeps the camera to the shutter alone (a kiosk that should not send frames by itself, or a test).
const liveScanOn = new URLSearchParams(window.location.search).get('scan') !== 'off';
let lastSource = 'file';
let previewUrl = null;

function setState(state) {
  document.body.dataset.state = state;
  const camera = state === 'camera';
  ui.viewfinder.hidden = !(camera || state === 'busy');
  ui.video.hidden = !camera;
  ui.preview.hidden = camera;
  ui.shutter.hidden = !camera;
  ui.cameraStop.hidden = !camera;
  ui.scanStatus.hidden = !camera || !liveScanOn;
  ui.cameraStart.hidden = camera || !cameraSupported();
}

function showPreview(blob) {
  if (previewUrl) URL.revokeObjectURL(previewUrl);
  previewUrl = URL.createObjectURL(blob);
  ui.preview.src = previewUrl;
}

/** Show the camera note with message `key`, or hide it when there is none. */
function noteCamera(key) {
  if (key) translate(ui.cameraNote, key);
  ui.cameraNote.hidden = !key;
}

async function openCamera() {
  noteCamera(null);
  lastSource = 'camera';
  setState('camera');
  ui.shutter.disabled = true;
  try {
    await startCamera(ui.video);
    ui.shutter.disabled = false;
    ui.shutter.focus();
    if (liveScanOn) startScan();
  } catch (error) {
    setState('idle');
    noteCamera(cameraProblem(error));
  }
}

/** Look up steady frames by themselves while the camera is open; the page's marks time camera-ready → answer. */
function startScan() {
  stopScan();
  markTaken();
  translate(ui.scanStatus, 'capture.scanLooking');
  scan = new LiveScan(ui.video, {
    identify,
    found: showScanned,
    status: (kind) => translate(ui.scanStatus, kind === 'moving' ? 'capture.scanMoving' : 'capture.scanLooking'),
  });
  window.liveScan = scan; // read by the browser tests: frames sent
  scan.start();
}

function stopScan() {
  scan?.stop();
  scan = null;
}

/** A live-scanned frame was recognised: show it as a taken photo's answer. */
function showScanned(answer, photo) {
  stopScan();
  lookup?.abort();
  lookup = null;
  stopCamera(ui.video);
  showPreview(photo);
  const panel = fillRooms(showFound(ui.result, answer, previewUrl));
  setState('result');
  panel.querySelector('.result-title').focus({ preventScroll: true });
  window.scrollTo({ top: 0 });
  markShown();
}

function closeCamera() {
  stopScan();
  stopCamera(ui.video);
  setState('idle');
  ui.cameraStart.focus();
}

// Marks bracket what the visitor waits for: photo taken or chosen → answer painted on screen.
function markTaken() {
  performance.clearMarks();
  performance.clearMeasures();
  performance.mark('photo-taken');
}

function markShown() {
  requestAnimationFrame(() =>
    setTimeout(() => {
      performance.mark('result-shown');
      performance.measure('photo-to-result', 'photo-taken', 'result-shown');
    }),
  );
}

/** Fetch each artwork's room, description and link (not part of /identify's answer) into its card; returns the
 * panel. */
function fillRooms(panel) {
  for (const card of panel.querySelectorAll('.card[data-object-id]')) {
    fetchObject(card.dataset.objectId).then((entry) => setCatalogueDetails(card, entry));
  }
  return panel;
}

/** Look up the photo (a JPEG blob) that `getPhoto` resolves to, and show the answer. */
async function lookUp(getPhoto) {
  lookup?.abort();
  const controller = new AbortController();
  lookup = controller;
  const current = () => lookup === controller;
  let show;
  try {
    const photo = await getPhoto();
    if (!current()) return;
    stopCamera(ui.video);
    showPreview(photo);
    setState('busy');
    showBusy(ui.result);
    const answer = await identify(photo, controller.signal);
    show = answer.match
      ? () => ['result', fillRooms(showFound(ui.result, answer, previewUrl))]
      : () => ['nomatch', showNoMatch(ui.result)];
  } catch (error) {
    if (error.name === 'AbortError') return;
    show = () => ['error', showProblem(ui.result, describeProblem(error))];
  }
  if (!current()) return;
  lookup = null;
  stopCamera(ui.video);
  const [state, panel] = show();
  setState(state);
  panel.querySelector('.result-title').focus({ preventScroll: true });
  window.scrollTo({ top: 0 });
  markShown();
}

function again() {
  ui.result.replaceChildren();
  if (lastSource === 'camera' && cameraSupported()) {
    openCamera();
  } else {
    setState('idle');
    ui.file.focus();
  }
}

// The frame is grabbed first and encoded after the camera stops: Chromium encodes in an idle moment, and a live
// preview leaves none (the visitor would wait up to a second more).
function takePhoto() {
  stopScan();
  markTaken();
  let frame;
  try {
    frame = grabFrame(ui.video);
  } catch (error) {
    lookUp(() => Promise.reject(error));
    return;
  }
  stopCamera(ui.video);
  lookUp(() => toJpeg(frame));
}

function lookUpFile(file) {
  if (!file) return;
  stopScan();
  markTaken();
  lastSource = 'file';
  lookUp(() => fromFile(file));
}

function wireDragAndDrop() {
  const hasFiles = (event) => Array.from(event.dataTransfer?.types || []).includes('Files');
  let depth = 0;
  document.addEventListener('dragenter', (event) => {
    if (!hasFiles(event)) return;
    depth += 1;
    document.body.classList.add('dragging');
  });
  document.addEventListener('dragleave', () => {
    depth = Math.max(0, depth - 1);
    if (depth === 0) document.body.classList.remove('dragging');
  });
  document.addEventListener('dragover', (event) => {
    if (hasFiles(event)) event.preventDefault();
  });
  document.addEventListener('drop', (event) => {
    event.preventDefault();
    depth = 0;
    document.body.classList.remove('dragging');
    lookUpFile(event.dataTransfer?.files?.[0]);
  });
}

async function main() {
  setState('idle');
  if (!cameraSupported()) noteCamera(window.isSecureContext ? 'camera.unsupported' : 'camera.insecure');
  ui.cameraStart.addEventListener('click', openCamera);
  ui.cameraStop.addEventListener('click', closeCamera);
  ui.shutter.addEventListener('click', takePhoto);
  ui.file.addEventListener('change', () => {
    lookUpFile(ui.file.files[0]);
    ui.file.value = '';
  });
  ui.result.addEventListener('click', (event) => {
    if (event.target.closest('.again')) again();
  });
  document.addEventListener('visibilitychange', () => {
    if (document.hidden && cameraRunning(ui.video)) closeCamera();
  });
  wireDragAndDrop();
  await startLanguages(ui.language);
}

main();
