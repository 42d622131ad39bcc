// What the result region shows: busy, the artworks found, "not in this collection", or a problem with a hint.
// Server text only ever goes in through textContent and attributes, never as HTML.

/** Confidence (0..1) in words a visitor reads at a glance, and a level for styling. */
export function confidenceInWords(confidence) {
  if (confidence >= 0.9) return { words: 'Very sure', level: 'high' };
  if (confidence >= 0.7) return { words: 'Fairly sure', level: 'mid' };
  return { words: 'Possibly', level: 'low' };
}

function fromTemplate(id) {
  return document.getElementById(id).content.firstElementChild.cloneNode(true);
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

function matchCard(match) {
  const card = fromTemplate('tpl-match');
  const title = match.name || 'Untitled';
  const { words, level } = confidenceInWords(match.confidence);
  const confidence = card.querySelector('.confidence');
  confidence.textContent = words;
  confidence.dataset.level = level;
  confidence.title = `Confidence ${Math.round(match.confidence * 100)} %`;
  card.querySelector('.card-title').textContent = title;
  card.querySelector('.card-artist').textContent = match.artist || 'Unknown artist';
  const image = card.querySelector('.card-image');
  image.src = match.image_url;
  image.alt = `The museum's picture of “${title}”`;
  image.addEventListener('error', () => image.remove(), { once: true });
  setFact(card, '.fact-date', match.year);
  card.dataset.objectId = match.object_id;
  return card;
}

/** Show a fact (date, room) of a card when it has a value. */
export function setFact(card, selector, value) {
  const fact = card.querySelector(selector);
  if (!value) return;
  fact.querySelector('dd').textContent = value;
  fact.hidden = false;
}

/** The artworks found, best first; returns the panel (its cards carry `data-object-id`). */
export function showFound(region, response) {
  const panel = fromTemplate('tpl-found');
  const matches = response.matches?.length ? response.matches : [response.match];
  panel.querySelector('.result-title').textContent =
    matches.length === 1 ? 'We found it' : `We found ${matches.length} artworks in your photo`;
  panel.querySelector('.degraded').hidden = !response.degraded;
  panel.querySelector('.matches').append(...matches.map(matchCard));
  return replace(region, panel);
}

/** The friendly "not in this collection" panel. */
export function showNoMatch(region) {
  return replace(region, fromTemplate('tpl-nomatch'));
}

/** A problem: a title, a hint what to do, and the technical detail in small print. */
export function showProblem(region, { title, hint, detail }) {
  const panel = fromTemplate('tpl-error');
  panel.querySelector('.result-title').textContent = title;
  panel.querySelector('.problem-hint').textContent = hint;
  panel.querySelector('.problem-detail').textContent = detail || '';
  return replace(region, panel);
}
