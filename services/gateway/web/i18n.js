// The page in the visitor's language. Each language's words live in one file, lang-<code>.js: a flat object of
// messages under the same keys in every language (tests/web/test_translations.py checks that). This module picks
// the language (the visitor's choice on this device, else the browser's languages), loads its words and puts them
// on the page. Elements name their words by key: data-i18n for the text, data-i18n-<attribute> for an attribute,
// data-i18n-args (JSON) for the values filled in, so that a switch re-translates everything on screen.
//
// Adding a language: write lang-<code>.js (copy lang-en.js and translate the values) and add it to LANGUAGES.

import english from './lang-en.js';

/** The languages offered, by BCP 47 code, each named in itself (as the switch shows it). */
export const LANGUAGES = {
  en: 'English',
  es: 'Español',
  ca: 'Català',
  fr: 'Français',
  de: 'Deutsch',
};

/** The page's own language: its HTML is written in it, and its words stand in for any that are missing. */
export const SOURCE_LANGUAGE = 'en';

// The visitor's choice, remembered on this device. Only a language code is ever stored here.
const STORAGE_KEY = 'artwork-matcher.language';
const ATTRIBUTES = ['aria-label', 'alt', 'title'];
const SELECTOR = ['[data-i18n]', ...ATTRIBUTES.map((name) => `[data-i18n-${name}]`)].join(', ');

const loaded = new Map([[SOURCE_LANGUAGE, english]]);
let language = SOURCE_LANGUAGE;
let messages = english;
let switching = 0; // the latest setLanguage call wins when the visitor switches quickly

/** The language of the page now. */
export function currentLanguage() {
  return language;
}

/**
 * The first of the browser's `preferred` languages (navigator.languages, best first) that the page offers: an exact
 * match ("pt-BR") or its primary language ("ca-ES-valencia" → "ca"); the source language when none is offered.
 */
export function pickLanguage(preferred, offered = Object.keys(LANGUAGES)) {
  for (const tag of preferred || []) {
    const code = String(tag).toLowerCase();
    if (offered.includes(code)) return code;
    const primary = code.split('-')[0];
    if (offered.includes(primary)) return primary;
  }
  return SOURCE_LANGUAGE;
}

function remembered() {
  try {
    const code = localStorage.getItem(STORAGE_KEY);
    return code in LANGUAGES ? code : null;
  } catch {
    return null; // storage can be switched off; the browser's languages decide then
  }
}

function remember(code) {
  try {
    localStorage.setItem(STORAGE_KEY, code);
  } catch {
    // Not remembered on this device; the page still switches.
  }
}

function formatValue(name, value) {
  if (typeof value !== 'number') return String(value);
  const style = name === 'percent' ? { style: 'percent', maximumFractionDigits: 0 } : {};
  return new Intl.NumberFormat(language, style).format(value);
}

/**
 * The message `key` in the page's language with `{name}` placeholders filled from `args`. A message given as plural
 * forms ({one, other, ...}) is chosen by `args.count`. Numbers are written the language's way; an argument named
 * `percent` is a fraction written as a percentage.
 */
export function t(key, args = {}) {
  let message = messages[key] ?? english[key] ?? key;
  if (typeof message === 'object') {
    message = message[new Intl.PluralRules(language).select(Number(args.count))] ?? message.other;
  }
  return message.replace(/\{(\w+)\}/g, (whole, name) => (name in args ? formatValue(name, args[name]) : whole));
}

function storeArgs(element, args) {
  if (args && Object.keys(args).length) element.dataset.i18nArgs = JSON.stringify(args);
  else delete element.dataset.i18nArgs;
}

/** Show message `key` as the text of `element`, and keep it translated when the language changes. */
export function translate(element, key, args) {
  element.dataset.i18n = key;
  storeArgs(element, args);
  element.textContent = t(key, args);
}

/** Set `attribute` (aria-label, alt or title) of `element` to message `key`, kept translated like the text. */
export function translateAttribute(element, attribute, key, args) {
  if (!ATTRIBUTES.includes(attribute)) throw new Error(`attribute ${attribute} is not translated`);
  element.setAttribute(`data-i18n-${attribute}`, key);
  storeArgs(element, args);
  element.setAttribute(attribute, t(key, args));
}

/** Put the current language's words into `root` (an element, a document or a fragment) and everything inside. */
export function applyTranslations(root) {
  const elements = [...root.querySelectorAll(SELECTOR)];
  if (root.matches?.(SELECTOR)) elements.push(root);
  for (const element of elements) {
    const args = element.dataset.i18nArgs ? JSON.parse(element.dataset.i18nArgs) : {};
    if (element.dataset.i18n) element.textContent = t(element.dataset.i18n, args);
    for (const attribute of ATTRIBUTES) {
      const key = element.getAttribute(`data-i18n-${attribute}`);
      if (key) element.setAttribute(attribute, t(key, args));
    }
  }
}

async function load(code) {
  if (!loaded.has(code)) loaded.set(code, (await import(`./lang-${code}.js`)).default);
  return loaded.get(code);
}

/**
 * Show the page in language `code` (one of LANGUAGES): load its words, translate the document, set <html lang> and
 * the switch. With `save`, the choice is remembered on this device. Resolves to the language shown.
 */
export async function setLanguage(code, { save = false } = {}) {
  if (!(code in LANGUAGES)) throw new Error(`no language ${code}`);
  const call = ++switching;
  const words = await load(code);
  if (call !== switching) return language;
  language = code;
  messages = words;
  document.documentElement.lang = code;
  applyTranslations(document);
  const picker = document.getElementById('language');
  if (picker) picker.value = code;
  if (save) remember(code);
  return code;
}

function fillPicker(picker) {
  picker.replaceChildren(
    ...Object.entries(LANGUAGES).map(([code, name]) => Object.assign(new Option(name, code), { lang: code })),
  );
  picker.addEventListener('change', () => {
    setLanguage(picker.value, { save: true }).catch(() => {
      picker.value = language; // its words could not be loaded: the page stays as it is
    });
  });
}

/**
 * Fill the language switch and show the page in the visitor's language: the one chosen before on this device, else
 * the first of the browser's languages the page offers. The page stays hidden (style.css) until this is done;
 * should a language's words fail to load, the page shows in its source language instead.
 */
export async function startLanguages(picker) {
  if (picker) fillPicker(picker);
  const wanted = remembered() || pickLanguage(navigator.languages?.length ? navigator.languages : [navigator.language]);
  try {
    await setLanguage(wanted);
  } catch (error) {
    console.info(`the page stays in ${SOURCE_LANGUAGE}: ${error.message}`);
    await setLanguage(SOURCE_LANGUAGE);
  } finally {
    document.documentElement.dataset.i18nState = 'ready';
  }
}
