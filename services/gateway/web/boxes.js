// The visitor's own photo with a numbered box on each artwork found in it. A match's `query_box` is where it lies
// in the photo ([x0, y0, x1, y1], fractions of its width and height; null when it was not located). Boxes are
// placed in CSS percentages, so they follow the photo as it scales to the column. A box is a button: it picks its
// artwork's card (highlighted and scrolled to) and dims the other boxes; tapping a card picks its box.

import { translate, translateAttribute } from './i18n.js';

/** `box` ([x0, y0, x1, y1] fractions) clipped to the photo, or null when it is missing, malformed or empty. */
export function boxInPhoto(box) {
  if (!Array.isArray(box) || box.length !== 4 || !box.every(Number.isFinite)) return null;
  const [x0, y0, x1, y1] = box.map((v) => Math.min(1, Math.max(0, v)));
  return x1 > x0 && y1 > y0 ? [x0, y0, x1, y1] : null;
}

const percent = (fraction) => `${fraction * 100}%`;

function boxButton(match, number, [x0, y0, x1, y1]) {
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'photo-box';
  button.setAttribute('aria-pressed', 'false');
  // Set through the CSSOM, which the page's CSP (no inline styles) allows.
  Object.assign(button.style, {
    left: percent(x0),
    top: percent(y0),
    width: percent(x1 - x0),
    height: percent(y1 - y0),
  });
  if (match.name) translateAttribute(button, 'aria-label', 'result.box', { number, title: match.name });
  else translateAttribute(button, 'aria-label', 'result.boxUntitled', { number });
  const label = document.createElement('span');
  label.className = 'box-number';
  label.textContent = String(number);
  button.append(label);
  return button;
}

function cardNumber(number) {
  const badge = document.createElement('span');
  badge.className = 'card-number';
  badge.setAttribute('aria-hidden', 'true');
  badge.textContent = String(number);
  return badge;
}

function scrollBehaviour() {
  return window.matchMedia('(prefers-reduced-motion: reduce)').matches ? 'auto' : 'smooth';
}

/**
 * Show the photo at `photoUrl` in `figure` with a box per located match (`matches` and their `cards`, in the same
 * order; a card's number is its place in the list). Nothing shows when no match was located.
 */
export function markPhoto(figure, photoUrl, matches, cards) {
  const located = matches.flatMap((match, i) => {
    const box = boxInPhoto(match.query_box);
    return box ? [{ card: cards[i], number: i + 1, button: boxButton(match, i + 1, box) }] : [];
  });
  if (!photoUrl || !located.length) return;
  const frame = figure.querySelector('.photo-frame');
  const image = frame.querySelector('img');
  // The frame takes the photo's proportions, at most 60 % of the screen's height, so the boxes sit on it exactly.
  image.addEventListener(
    'load',
    () => {
      const ratio = image.naturalWidth / image.naturalHeight;
      Object.assign(frame.style, { aspectRatio: String(ratio), maxWidth: `calc(60vh * ${ratio})` });
    },
    { once: true },
  );
  image.src = photoUrl;
  frame.append(...located.map(({ button }) => button));
  if (located.length > 1) translate(figure.querySelector('figcaption'), 'result.boxesHint');
  else figure.querySelector('figcaption').remove();
  const select = (card, scroll) => {
    figure.dataset.selected = 'true';
    for (const other of cards) other.classList.toggle('selected', other === card);
    for (const entry of located) entry.button.setAttribute('aria-pressed', String(entry.card === card));
    if (scroll) card.scrollIntoView({ behavior: scrollBehaviour(), block: 'nearest' });
  };
  for (const { card, number, button } of located) {
    card.prepend(cardNumber(number));
    button.addEventListener('click', () => select(card, true));
  }
  for (const card of cards) card.addEventListener('click', () => select(card, false));
  figure.hidden = false;
}
