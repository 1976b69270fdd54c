// « Motifs d'absence »: the CPE edits the school's list (the legal reasons stay active and
// justifying: the server refuses otherwise, and says why).
import { h, replace } from '../dom.js';
import { apiJson } from '../api.js';

export function reasonsSection(schoolId) {
  const body = h('div', {});
  const status = h('p', { role: 'status', 'aria-live': 'polite' });
  const error = h('div', { class: 'alert', role: 'alert' });
  let reasons = [];
  const url = `/api/attendance/schools/${schoolId}/reasons`;

  function row(r, i) {
    const id = `reason-${i}`;
    const field = (key, type, label) => {
      const input = h('input', { type, id: `${id}-${key}`, disabled: r.legal && key !== 'label' });
      if (type === 'checkbox') input.checked = Boolean(r[key]); else input.value = r[key];
      input.addEventListener('change', () => {
        r[key] = type === 'checkbox' ? input.checked : input.value;
      });
      return h('span', { class: `reason-${key}` }, h('label', { for: input.id }, label), input);
    };
    return h('li', { class: 'reason-row', 'data-code': r.code },
      field('label', 'text', `Libellé (${r.code})`),
      field('justifying', 'checkbox', 'Justificatif'),
      field('active', 'checkbox', 'Proposé'),
      r.legal ? h('span', { class: 'muted' }, 'Motif légal') : null);
  }

  function draw() {
    replace(body, h('ul', { class: 'reason-list' }, reasons.map(row)));
  }

  const newLabel = h('input', { type: 'text', id: 'new-reason', maxlength: '80' });
  const add = h('form', { class: 'reason-add', onsubmit: (e) => {
    e.preventDefault();
    const label = newLabel.value.trim();
    if (!label) return;
    const code = label.normalize('NFD').replace(/[\u0300-\u036f]/g, '').toLowerCase()
      .replace(/[^a-z0-9]+/g, '_').replace(/^_|_$/g, '').slice(0, 40) || `motif_${reasons.length}`;
    reasons.push({ code, label, justifying: false, active: true, legal: false });
    newLabel.value = '';
    draw();
  } }, h('label', { for: 'new-reason' }, 'Nouveau motif'), newLabel,
  h('button', { type: 'submit', class: 'btn' }, 'Ajouter'));

  const save = h('button', { type: 'button', class: 'btn btn-primary', onclick: async () => {
    try {
      const answer = await apiJson('PUT', url, { reasons: reasons.map((r) => ({
        code: r.code, label: r.label, justifying: r.justifying, active: r.active })) });
      reasons = answer.reasons;
      replace(error);
      status.textContent = 'Liste des motifs enregistrée.';
      draw();
    } catch (err) { replace(error, h('p', {}, err.message)); }
  } }, 'Enregistrer les motifs');

  apiJson('GET', url).then((data) => { reasons = data.reasons; draw(); },
    (err) => replace(error, h('p', {}, err.message)));
  return h('section', { class: 'card', 'aria-labelledby': 'reasons-title' },
    h('h2', { id: 'reasons-title' }, "Motifs d'absence"), error, body, add, save, status);
}
