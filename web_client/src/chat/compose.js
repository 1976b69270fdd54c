// « Nouveau message »: recipients the policy allows (GET /api/chat/recipients), the kind
// (the school team may open a group or send an information), a title, the text, files.
import { h, replace } from '../dom.js';
import { uploadFile } from './connection.js';
import { roleLabel } from '../roles.js';

const TEAM = new Set(['teacher', 'cpe', 'staff']);

export function composeForm({ api, conn, me, limits, onError, onSent }) {
  const chosen = new Set();
  const attached = [];
  let everyone = [];
  const team = TEAM.has(me.role);
  const filter = h('input', { type: 'search', id: 'dest-filter', placeholder: 'Filtrer par nom', autocomplete: 'off' });
  const picks = h('ul', { class: 'dest-list', 'aria-busy': 'true' }, h('li', { class: 'muted' }, 'Chargement des destinataires…'));
  const chosenLine = h('p', { class: 'dest-chosen', 'aria-live': 'polite' });
  const kind = h('select', { id: 'conv-kind' },
    h('option', { value: 'direct' }, 'Message à une personne'),
    team ? h('option', { value: 'group' }, 'Groupe (plusieurs personnes, réponses possibles)') : null,
    team ? h('option', { value: 'information' }, 'Information (sans réponse, avec accusé de réception)') : null);
  const title = h('input', { type: 'text', id: 'conv-title', maxlength: '120' });
  const titleRow = h('p', { class: 'field', hidden: true }, h('label', { for: 'conv-title' }, 'Titre'), title);
  const body = h('textarea', { id: 'conv-body', rows: '5', maxlength: String(limits.body_max ?? 4000), required: true });
  const fileInput = h('input', { type: 'file', id: 'conv-files', multiple: true });
  const chips = h('ul', { class: 'attach-chips' });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Envoyer');

  kind.addEventListener('change', () => { titleRow.hidden = kind.value === 'direct'; refresh(); });
  filter.addEventListener('input', refresh);
  fileInput.addEventListener('change', async () => {
    for (const file of fileInput.files) {
      try { const att = await uploadFile(file); attached.push(att); chips.append(h('li', { class: 'chip' }, att.name)); }
      catch (err) { onError(err.message); }
    }
    fileInput.value = '';
  });

  function refresh() {
    const q = filter.value.trim().toLowerCase();
    const shown = everyone.filter((p) => !q || p.name.toLowerCase().includes(q)).slice(0, 60);
    const single = kind.value === 'direct';
    replace(picks, shown.length ? shown.map((p) => h('li', {},
      h('label', {}, h('input', { type: single ? 'radio' : 'checkbox', name: 'dest', value: String(p.id),
        checked: chosen.has(p.id), onchange: (e) => {
          if (single) chosen.clear();
          if (e.target.checked) chosen.add(p.id); else chosen.delete(p.id);
          refresh();
        } }), ` ${p.name} `, h('span', { class: 'muted' }, `(${roleLabel(p.role)})`)))) :
      h('li', { class: 'empty' }, everyone.length ? 'Personne ne correspond.' :
        'Aucun destinataire possible pour le moment (en dehors des heures d’échange, les familles et les élèves ne peuvent pas commencer de conversation).'));
    const names = everyone.filter((p) => chosen.has(p.id)).map((p) => p.name);
    chosenLine.textContent = names.length ? `Destinataires : ${names.join(', ')}` : 'Aucun destinataire choisi.';
  }

  api.chatRecipients().then(({ recipients }) => {
    everyone = recipients;
    picks.removeAttribute('aria-busy');
    refresh();
  }, (err) => onError(err.message));

  const form = h('form', { class: 'card compose-form', onsubmit: async (e) => {
    e.preventDefault();
    if (!chosen.size) { onError('Choisissez au moins un destinataire.'); return; }
    submit.disabled = true;
    const answer = await conn.call('create', { kind: kind.value, members: [...chosen],
      title: title.value, body: body.value, attachments: attached.map((a) => a.id) });
    submit.disabled = false;
    if (!answer.ok) { onError(answer.error.message); return; }
    onSent(answer.conversation_id);
  } },
  h('h2', { tabindex: '-1' }, 'Nouveau message'),
  team ? h('p', { class: 'field' }, h('label', { for: 'conv-kind' }, 'Type'), kind) : null,
  h('fieldset', { class: 'field' }, h('legend', {}, 'Destinataires'),
    h('label', { for: 'dest-filter', class: 'visually-hidden' }, 'Filtrer les destinataires'), filter, picks, chosenLine),
  titleRow,
  h('p', { class: 'field' }, h('label', { for: 'conv-body' }, 'Message'), body),
  h('p', { class: 'field' }, h('label', { for: 'conv-files' }, `Pièces jointes (${limits.types ?? 'PDF, images'} ; ${Math.round((limits.attachment_max_bytes ?? 5242880) / 1048576)} Mio au plus)`), fileInput, chips),
  h('p', {}, submit));
  return form;
}
