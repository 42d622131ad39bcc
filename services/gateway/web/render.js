// What the result region shows: busy, the artworks found, "not in this collection", or a problem with a hint.
// Server text only ever goes in through textContent and attributes, never as HTML. The page's own words are message
// keys (i18n.js), so a panel on screen follows a language switch.

import { markPhoto } from './boxes.js';
import { applyTranslations, t, translate, translateAttribute } from './i18n.js';

const CONFIDENCE_LEVELS = [
  { least: 0.9, level: 'high', key: 'card.confidence.high' },
  { least: 0.7, level: 'mid', key: 'card.confidence.mid' },
  { least: -Infinity, level: 'low', key: 'card.confidence.low' },
];

/** Confidence (0..1) in words a visitor reads at a glance (`key`, and `words` in the page's language), and a level. */
export function confidenceInWords(confidence) {
  const { level, key } = CONFIDENCE_LEVELS.find(({ least }) => confidence >= least) ?? CONFIDENCE_LEVELS.at(-1);
  return { key, words: t(key), level };
}

function fromTemplate(id) {
  const panel = document.getElementById(id).content.firstElementChild.cloneNode(true);
  applyTranslations(panel);
  return panel;
}

/** Server text when there is some, else the page's message `key` (kept translated). */
function textOr(element, text, key) {
  if (text) element.textContent = text;
  else translate(element, key);
}

function replace(region, panel) {
  region.replaceChildren(panel);
  region.setAttribute('aria-busy', 'false');
  return panel;
}

/** The "looking at your photo" panel. */
export function showBusy(region) {
  region.replaceChildren(fromTemplate('tpl-busy'));
  region.setAttribute('aria-busy', 'true');
}

/** The partner's note: a near-identical version of the answer before it (`leader`), so the photo may show either. */
function nearDuplicateNote(card, leader) {
  const note = card.querySelector('.card-near-duplicate');
  if (leader?.name) translate(note, 'card.nearDuplicate', { title: leader.name });
  else translate(note, 'card.nearDuplicateUntitled');
  note.hidden = false;
}

function matchCard(match, index, matches) {
  const card = fromTemplate('tpl-match');
  const { key, level } = confidenceInWords(match.confidence);
  const confidence = card.querySelector('.confidence');
  translate(confidence, key);
  translateAttribute(confidence, 'title', 'card.confidenceTitle', { percent: match.confidence });
  confidence.dataset.level = level;
  textOr(card.querySelector('.card-title'), match.name, 'card.untitled');
  textOr(card.querySelector('.card-artist'), match.artist, 'card.unknownArtist');
  const image = card.querySelector('.card-image');
  image.src = match.image_url;
  if (match.name) translateAttribute(image, 'alt', 'card.imageAlt', { title: match.name });
  else translateAttribute(image, 'alt', 'card.imageAltUntitled');
  image.addEventListener('error', () => image.remove(), { once: true });
  setFact(card, '.fact-date', match.year);
  card.dataset.objectId = match.object_id;
  if (match.near_duplicate_of) {
    nearDuplicateNote(card, matches.slice(0, index).findLast((m) => m.object_id === match.near_duplicate_of));
  }
  return card;
}

/** Show a fact (date, room) of a card when it has a value. */
export function setFact(card, selector, value) {
  const fact = card.querySelector(selector);
  if (!value) return;
  fact.querySelector('dd').textContent = value;
  fact.hidden = false;
}

/** An absolute http(s) URL (the only links a card follows), else null. */
function safeLink(value) {
  try {
    const url = new URL(value);
    return url.protocol === 'https:' || url.protocol === 'http:' ? url.href : null;
  } catch {
    return null;
  }
}

/** The catalogue's room, description and link of an artwork (`GET /objects/{id}`) on its card, those it has. */
export function setCatalogueDetails(card, entry) {
  if (!entry) return;
  setFact(card, '.fact-room', entry.room);
  const description = card.querySelector('.card-description');
  if (entry.description) {
    description.textContent = entry.description;
    description.hidden = false;
  }
  const link = card.querySelector('.card-link');
  const href = entry.link ? safeLink(entry.link) : null;
  if (href) {
    link.href = href;
    link.hidden = false;
  }
}

/**
 * The artworks found, best first, and where they are on the visitor's photo (`photoUrl`, an object URL) when they
 * were located; returns the panel (its cards carry `data-object-id`). A near-duplicate partner (`near_duplicate_of`:
 * the same picture catalogued twice, which the photo cannot tell apart) has its card, with a note, right after its
 * answer's, but is not counted as another artwork and gets no box of its own (it lies where its answer's box is).
 */
export function showFound(region, response, photoUrl) {
  const panel = fromTemplate('tpl-found');
  const matches = response.matches?.length ? response.matches : [response.match];
  const own = matches.flatMap((match, i) => (match.near_duplicate_of ? [] : [i]));
  translate(panel.querySelector('.result-title'), 'result.found', { count: own.length });
  panel.querySelector('.degraded').hidden = !response.degraded;
  const cards = matches.map(matchCard);
  panel.querySelector('.matches').append(...cards);
  const figure = panel.querySelector('.your-photo');
  markPhoto(figure, photoUrl, own.map((i) => matches[i]), own.map((i) => cards[i]));
  return replace(region, panel);
}

/** The friendly "not in this collection" panel. */
export function showNoMatch(region) {
  return replace(region, fromTemplate('tpl-nomatch'));
}

/**
 * A problem (problems.js): a title, a hint what to do, and the technical detail in small print. A detail from the
 * server or the browser is English text and is marked so (screen readers then pronounce it right).
 */
export function showProblem(region, { title, hint, args, detail }) {
  const panel = fromTemplate('tpl-error');
  translate(panel.querySelector('.result-title'), title, args);
  translate(panel.querySelector('.problem-hint'), hint, args);
  const small = panel.querySelector('.problem-detail');
  if (detail?.key) {
    translate(small, detail.key, detail.args);
  } else {
    small.textContent = detail?.text || '';
    small.lang = 'en';
  }
  return replace(region, panel);
}
