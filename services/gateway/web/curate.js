// The curator page: sign in with the admin key, then list, search, add, edit, replace the image of and delete the
// collection's artworks, each with the flags of the last collection report (artwork-matcher index doctor).
//
// The admin key lives in one variable of this module and nowhere else: not in the URL, not in local or session
// storage, not in a cookie. Reloading or closing the tab forgets it. Server text only goes in through textContent.

import { startLanguages, t, translate, translateAttribute } from './i18n.js';

const PAGE = 1000; // GET /objects returns at most this many a call

/** The report's flags in the order shown, each with its words. */
const FLAG_KEYS = {
  near_duplicate: 'curate.flag.nearDuplicate',
  confusable: 'curate.flag.confusable',
  few_keypoints: 'curate.flag.fewKeypoints',
  too_small: 'curate.flag.tooSmall',
  no_features: 'curate.flag.noFeatures',
  no_image: 'curate.flag.noImage',
  missing_title: 'curate.flag.missingTitle',
  missing_artist: 'curate.flag.missingArtist',
};

let adminKey = null; // in memory only
let artworks = []; // catalogue entries, as GET /objects answers them
let findings = new Map(); // object id → the report's finding
const imageVersions = new Map(); // object id → a counter that changes the thumbnail's URL after a new image

const $ = (id) => document.getElementById(id);

/** A failed call: the gateway's error body (code and message) and the HTTP status. */
class CallError extends Error {
  constructor(status, body) {
    super(body?.message || `HTTP ${status}`);
    this.status = status;
    this.code = body?.error || 'network_error';
  }
}

/** Call the gateway with the admin key; resolves to the JSON body, rejects with CallError. */
async function call(method, path, body, headers = {}) {
  let response;
  try {
    response = await fetch(path, { method, body, headers: { ...headers, ...(adminKey ? { 'X-API-Key': adminKey } : {}) } });
  } catch (error) {
    throw new CallError(0, { message: error.message });
  }
  const json = await response.json().catch(() => null);
  if (!response.ok) throw new CallError(response.status, json);
  return json;
}

function setStatus(key, args) {
  translate($('status'), key, args);
}

function showError(element, error) {
  translate(element, 'curate.error', { message: error.message });
  element.hidden = false;
}

// --- signing in ---------------------------------------------------------------------------------------------------

async function signIn(event) {
  event.preventDefault();
  const input = $('api-key');
  const error = $('sign-in-error');
  error.hidden = true;
  adminKey = input.value.trim();
  try {
    await loadReport();
  } catch (problem) {
    adminKey = null;
    const key = { 401: 'curate.signIn.wrong', 403: 'curate.signIn.none' }[problem.status];
    if (key) translate(error, key);
    else translate(error, 'curate.error', { message: problem.message });
    error.hidden = false;
    return;
  }
  input.value = '';
  document.body.dataset.state = 'signed-in';
  $('sign-in').hidden = true;
  $('workspace').hidden = false;
  $('sign-out').hidden = false;
  await loadCatalogue();
}

function signOut() {
  adminKey = null;
  artworks = [];
  findings = new Map();
  $('artworks').replaceChildren();
  $('workspace').hidden = true;
  $('sign-out').hidden = true;
  $('sign-in').hidden = false;
  document.body.dataset.state = 'signed-out';
  $('api-key').focus();
}

// --- the report and the catalogue ---------------------------------------------------------------------------------

/** Fetch the last collection report (null when there is none); a wrong key rejects, which signing in relies on. */
async function loadReport() {
  let report = null;
  try {
    report = await call('GET', '/collection/report');
  } catch (error) {
    if (error.status !== 404) throw error;
  }
  findings = new Map((report?.artworks || []).map((finding) => [finding.object_id, finding]));
  showReport(report);
}

function showReport(report) {
  const counts = $('report-counts');
  counts.replaceChildren();
  if (!report) {
    translate($('report-summary'), 'curate.report.missing');
    return;
  }
  const date = new Date(report.generated_at).toLocaleString(document.documentElement.lang);
  translate($('report-summary'), 'curate.report.summary', {
    date,
    flagged: report.artworks.length,
    objects: report.objects,
  });
  for (const [flag, key] of Object.entries(FLAG_KEYS)) {
    if (!report.counts[flag]) continue;
    const chip = document.createElement('li');
    chip.className = 'chip';
    chip.dataset.flag = flag;
    translate(chip, 'curate.report.count', { name: t(key), count: report.counts[flag] });
    counts.append(chip);
  }
}

async function loadCatalogue() {
  setStatus('curate.loading');
  const entries = [];
  try {
    for (let offset = 0; ; offset += PAGE) {
      const page = await call('GET', `/objects?offset=${offset}&limit=${PAGE}`);
      entries.push(...page.objects);
      if (entries.length >= page.total || page.objects.length === 0) break;
    }
  } catch (error) {
    translate($('status'), 'curate.error', { message: error.message });
    return;
  }
  artworks = entries;
  $('status').textContent = '';
  showArtworks();
}

function matches(entry, words) {
  const text = [entry.object_id, entry.name, entry.artist, entry.room].join(' ').toLowerCase();
  return words.every((word) => text.includes(word));
}

/** The artworks that match the search and the "only flagged" switch, each with its flags. */
function showArtworks() {
  const words = $('search').value.toLowerCase().split(/\s+/).filter(Boolean);
  const flaggedOnly = $('flagged-only').checked;
  const shown = artworks.filter((entry) => matches(entry, words) && (!flaggedOnly || findings.has(entry.object_id)));
  $('artworks').replaceChildren(...shown.map(artworkItem));
  translate($('count'), 'curate.count', { count: shown.length });
}

function artworkItem(entry) {
  const item = $('tpl-artwork').content.firstElementChild.cloneNode(true);
  item.dataset.objectId = entry.object_id;
  const title = item.querySelector('.artwork-title');
  if (entry.name) title.textContent = entry.name;
  else translate(title, 'curate.untitled');
  item.querySelector('.artwork-artist').textContent = entry.artist;
  item.querySelector('.artwork-id').textContent = [entry.object_id, entry.room].filter(Boolean).join(' · ');
  const thumb = item.querySelector('.thumb');
  const version = imageVersions.get(entry.object_id);
  thumb.src = entry.image_url + (version ? `?v=${version}` : '');
  translateAttribute(thumb, 'alt', 'curate.thumbAlt', { title: entry.name || entry.object_id });
  thumb.addEventListener('error', () => thumb.classList.add('missing'), { once: true });
  const flags = item.querySelector('.flags');
  const finding = findings.get(entry.object_id);
  for (const flag of finding?.flags || []) {
    const chip = document.createElement('li');
    chip.className = 'chip';
    chip.dataset.flag = flag;
    translate(chip, FLAG_KEYS[flag] || 'curate.flag.other');
    const detail = finding.details?.[flag];
    if (detail) chip.title = detail; // the report's own sentence (English), as a tooltip
    flags.append(chip);
  }
  if (finding?.related?.length) {
    // The pair flags' other artworks, in words (a tooltip alone is out of reach on a touch screen).
    const related = item.querySelector('.related');
    translate(related, 'curate.related', { ids: finding.related.join(', ') });
    related.hidden = false;
  }
  translate(item.querySelector('.edit'), 'curate.edit');
  translate(item.querySelector('.delete'), 'curate.delete');
  item.querySelector('.edit').addEventListener('click', () => openEditor(entry));
  item.querySelector('.delete').addEventListener('click', () => confirmDelete(entry));
  return item;
}

// --- adding and editing -------------------------------------------------------------------------------------------

let editing = null; // the entry being edited, null when adding

function openEditor(entry = null) {
  editing = entry;
  const form = $('editor-form');
  form.reset();
  $('editor-error').hidden = true;
  if (entry) translate($('editor-title'), 'curate.editor.edit', { title: entry.name || entry.object_id });
  else translate($('editor-title'), 'curate.editor.add');
  translate($('image-label'), entry ? 'curate.field.replaceImage' : 'curate.field.image');
  $('field-object-id').hidden = Boolean(entry);
  const values = entry
    ? { title: entry.name, artist: entry.artist, date: entry.year, room: entry.room, description: entry.description }
    : {};
  for (const name of ['title', 'artist', 'date', 'room', 'description']) $(name).value = values[name] || '';
  $('link').value = entry?.link || '';
  $('object-id').value = '';
  $('editor').showModal();
  (entry ? $('title') : $('object-id')).focus();
}

const FIELDS = ['title', 'artist', 'date', 'room', 'description', 'link'];

/** The catalogue fields as typed (white space around them dropped). */
function typedFields() {
  return Object.fromEntries(FIELDS.map((name) => [name, $(name).value.trim()]));
}

/**
 * Send the editor: a new artwork, or a new image, goes as a whole artwork (multipart: image and fields; the gateway
 * embeds it); a change of words alone is a PATCH of the fields (nothing is embedded again). Resolves to the entry.
 */
function send(objectId, adding) {
  const fields = typedFields();
  const file = $('image').files[0];
  if (!adding && !file) {
    const body = JSON.stringify(fields);
    return call('PATCH', `/objects/${encodeURIComponent(objectId)}`, body, { 'Content-Type': 'application/json' });
  }
  const data = new FormData();
  // A replaced artwork keeps its other catalogue fields (a CSV's extra columns): they travel with the new image.
  for (const [name, value] of Object.entries(editing?.extra || {})) {
    if (!FIELDS.includes(name)) data.append(name, value);
  }
  for (const [name, value] of Object.entries(fields)) data.append(name, value);
  data.append('image', file, file.name);
  if (adding) data.append('object_id', objectId);
  return call(adding ? 'POST' : 'PUT', adding ? '/objects' : `/objects/${encodeURIComponent(objectId)}`, data);
}

async function save(event) {
  event.preventDefault();
  const error = $('editor-error');
  error.hidden = true;
  const adding = !editing;
  const objectId = adding ? $('object-id').value.trim() : editing.object_id;
  if (adding && (!objectId || !$('image').files.length)) {
    translate(error, 'curate.editor.needed');
    error.hidden = false;
    return;
  }
  $('editor-save').disabled = true;
  translate($('status'), 'curate.saving');
  try {
    const stored = await send(objectId, adding);
    if ($('image').files.length) {
      imageVersions.set(objectId, (imageVersions.get(objectId) || 0) + 1);
    }
    artworks = [...artworks.filter((a) => a.object_id !== objectId), stored].sort((a, b) =>
      a.object_id < b.object_id ? -1 : 1,
    );
    $('editor').close();
    setStatus(adding ? 'curate.saved.added' : 'curate.saved.updated', { title: stored.name || stored.object_id });
    showArtworks();
  } catch (problem) {
    $('status').textContent = '';
    showError(error, problem);
  } finally {
    $('editor-save').disabled = false;
  }
}

// --- deleting -----------------------------------------------------------------------------------------------------

let deleting = null;

function confirmDelete(entry) {
  deleting = entry;
  translate($('confirm-text'), 'curate.confirm.text', { title: entry.name || entry.object_id, id: entry.object_id });
  $('confirm').showModal();
  $('confirm-cancel').focus();
}

async function deleteConfirmed() {
  const entry = deleting;
  $('confirm').close();
  if (!entry) return;
  try {
    await call('DELETE', `/objects/${encodeURIComponent(entry.object_id)}`);
  } catch (problem) {
    translate($('status'), 'curate.error', { message: problem.message });
    return;
  }
  artworks = artworks.filter((a) => a.object_id !== entry.object_id);
  setStatus('curate.deleted', { title: entry.name || entry.object_id });
  showArtworks();
}

// --- start --------------------------------------------------------------------------------------------------------

function wire() {
  $('sign-in').addEventListener('submit', signIn);
  $('sign-out').addEventListener('click', signOut);
  $('search').addEventListener('input', showArtworks);
  $('flagged-only').addEventListener('change', showArtworks);
  $('add').addEventListener('click', () => openEditor());
  $('editor-form').addEventListener('submit', save);
  $('editor-cancel').addEventListener('click', () => $('editor').close());
  $('confirm-cancel').addEventListener('click', () => {
    deleting = null;
    $('confirm').close();
  });
  $('confirm-delete').addEventListener('click', deleteConfirmed);
}

wire();
startLanguages($('language')).then(() => {
  document.body.dataset.ready = 'true';
  $('api-key').focus();
});
