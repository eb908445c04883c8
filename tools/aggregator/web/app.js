// The aggregator's page: polls GET /api/v1/history and /api/v1/stats every
// second and draws one card per series, with a graph of what the series
// received per interval. Plain DOM and SVG; no library, nothing fetched but
// from this aggregator.
'use strict';

const POLL_MS = 1000;
const WINDOW = 60; // intervals shown in a graph
const SVG = 'http://www.w3.org/2000/svg';
const cards = new Map(); // "name{k=v,...}" -> card element

const $ = (id) => document.getElementById(id);

// The tags as the aggregator's canonical "k=v,k=v" (keys sorted).
function tagString(tags) {
  return Object.keys(tags).sort().map((k) => k + '=' + tags[k]).join(',');
}

// Readable text for a number; data-value attributes keep the exact one.
function fmt(v) {
  if (!Number.isFinite(v)) return String(v);
  return String(Number(v.toPrecision(6)));
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function svgEl(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const k of Object.keys(attrs)) e.setAttribute(k, attrs[k]);
  return e;
}

function newCard(s, id, tags) {
  const card = el('section', 'series');
  card.dataset.id = id;
  card.dataset.name = s.name;
  card.dataset.tags = tags;
  card.appendChild(el('h2', 'name', s.name));
  const ul = el('ul', 'tags');
  for (const kv of tags ? tags.split(',') : []) ul.appendChild(el('li', null, kv));
  card.appendChild(ul);
  const dl = el('dl', 'numbers');
  for (const [label, cls] of [['op', 'op'], ['datapoints', 'count'], ['total', 'total'],
    ['last interval', 'last-interval']]) {
    dl.appendChild(el('dt', null, label));
    dl.appendChild(el('dd', cls));
  }
  card.appendChild(dl);
  const svg = svgEl('svg', {class: 'chart', viewBox: '0 0 300 100', preserveAspectRatio: 'none',
    role: 'img'});
  card.appendChild(svg);
  return card;
}

function setNumber(card, cls, v) {
  const dd = card.querySelector('dd.' + cls);
  dd.textContent = fmt(v);
  dd.dataset.value = String(v);
}

// The per-interval graph: x is the interval (the last WINDOW up to now), y
// the value; intervals without data break the line.
function drawChart(svg, s, now) {
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  const first = Math.max(1, now - WINDOW + 1);
  const pts = s.points.filter((p) => p[0] >= first && p[0] <= now);
  svg.dataset.points = String(pts.length);
  svg.dataset.values = pts.map((p) => p[0] + ':' + p[1]).join(' ');
  svg.setAttribute('aria-label', s.name + ': ' + pts.length + ' intervals');
  let lo = 0;
  let hi = 0;
  for (const p of pts) {
    lo = Math.min(lo, p[1]);
    hi = Math.max(hi, p[1]);
  }
  if (hi === lo) hi = lo + 1;
  const top = 10;
  const bottom = 92;
  const x = (iv) => (now === first ? 300 : ((iv - first) / (now - first)) * 296 + 2);
  const y = (v) => bottom - ((v - lo) / (hi - lo)) * (bottom - top);
  svg.appendChild(svgEl('line', {class: 'gridline', x1: 0, x2: 300, y1: y(hi), y2: y(hi)}));
  svg.appendChild(svgEl('line', {class: 'gridline', x1: 0, x2: 300, y1: y(lo), y2: y(lo)}));
  const label = (text, yy) => {
    const t = svgEl('text', {x: 2, y: yy});
    t.textContent = text;
    svg.appendChild(t);
  };
  label(fmt(hi), top - 1);
  label(fmt(lo), 99);
  let d = '';
  let prev = null;
  for (const p of pts) {
    d += (prev !== null && p[0] === prev + 1 ? 'L' : 'M') + x(p[0]).toFixed(1) + ' ' +
      y(p[1]).toFixed(1) + ' ';
    prev = p[0];
  }
  if (d) svg.appendChild(svgEl('path', {class: 'line', d: d.trim()}));
  for (const p of pts) {
    svg.appendChild(svgEl('circle', {class: 'dot', cx: x(p[0]).toFixed(1),
      cy: y(p[1]).toFixed(1), r: 1.8}));
  }
}

function applyFilter() {
  const q = $('filter').value.trim().toLowerCase();
  for (const card of cards.values()) {
    const hay = (card.dataset.name + ' ' + card.dataset.tags).toLowerCase();
    card.hidden = q !== '' && !hay.includes(q);
  }
}

function render(history, stats) {
  const grid = $('series');
  const now = history.interval;
  const seen = new Set();
  for (const s of history.series) {
    const tags = tagString(s.tags);
    const id = s.name + '{' + tags + '}';
    seen.add(id);
    let card = cards.get(id);
    if (!card) {
      card = newCard(s, id, tags);
      cards.set(id, card);
    }
    grid.appendChild(card); // keeps the aggregator's order (name, then tags)
    card.querySelector('dd.op').textContent = s.op === 10 ? 'max' : 'add';
    setNumber(card, 'count', s.count);
    setNumber(card, 'total', s.value);
    const last = s.points.length ? s.points[s.points.length - 1] : null;
    setNumber(card, 'last-interval', last ? last[1] : 0);
    drawChart(card.querySelector('svg'), s, now);
  }
  for (const [id, card] of cards) {
    if (!seen.has(id)) { // the aggregator was reset
      card.remove();
      cards.delete(id);
    }
  }
  applyFilter();
  const uri = location.origin + '/api/v4/update';
  $('uri').textContent = uri;
  $('uri2').textContent = uri;
  $('empty').hidden = history.series.length > 0;
  let text = history.series.length + ' series \u00b7 ' + stats.requests + ' requests \u00b7 ' +
    stats.measurements_accepted + ' datapoints accepted, ' + stats.measurements_dropped +
    ' dropped \u00b7 interval ' + now + ' (' + history.step + ' s each) \u00b7 updated ' +
    new Date().toLocaleTimeString();
  if (history.series_without_history > 0) {
    text += ' \u00b7 ' + history.series_without_history + ' series without graphs (limit reached)';
  }
  $('status').textContent = text;
  $('status').className = 'status';
  document.body.dataset.ready = 'true';
}

async function poll() {
  if (!$('paused').checked) {
    try {
      const [h, s] = await Promise.all([fetch('/api/v1/history'), fetch('/api/v1/stats')]);
      if (!h.ok || !s.ok) throw new Error('HTTP ' + h.status + ' / ' + s.status);
      render(await h.json(), await s.json());
    } catch (e) {
      $('status').textContent = 'cannot reach the aggregator: ' + e.message;
      $('status').className = 'status error';
    }
  }
  setTimeout(poll, POLL_MS);
}

$('filter').addEventListener('input', applyFilter);
poll();
