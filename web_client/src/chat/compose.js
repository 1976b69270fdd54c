// « Nouveau message »: recipients the policy allows (GET /api/chat/recipients), the kind
// (the school team may open a group or send an information), a title, the text, files.
import { h, replace } from '../dom.js';
import { uploadFile } from './connection.js';
import { roleLabel } from '../roles.js';

const TEAM = new Set(['teacher', 'cpe', 'staff']);

export function composeForm({ api, conn, me, limits, onError, onSent }) {
  const chosen = new Set();
  const chosenLists = new Map(); // "class_id:audience" → list
  let quiet = null;
  const quietNote = h('p', { class: 'quiet-note', role: 'note', hidden: true });
  const listsPicks = h('ul', { class: 'lists-list' });
  const listsLine = h('p', { class: 'dest-chosen', 'aria-live': 'polite' });
  const listsBox = h('fieldset', { class: 'field', hidden: true },
    h('legend', {}, 'Listes de diffusion'), listsPicks, listsLine);
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

  kind.addEventListener('change', () => {
    if (kind.value === 'direct' && chosenLists.size) {
      onError('Une liste de diffusion s’écrit en groupe ou en information.');
      kind.value = 'information';
    }
    titleRow.hidden = kind.value === 'direct';
    refresh();
  });
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
        } }), h('span', { class: 'dest-text' }, p.name,
        h('span', { class: 'muted dest-role' }, ` · ${roleLabel(p.role)}`))))) :
      h('li', { class: 'empty' }, everyone.length ? 'Personne ne correspond.'
        : quiet ? 'Personne pour le moment : voir les heures d’échange ci-dessus.'
          : 'Aucun destinataire possible pour le moment.'));
    const names = everyone.filter((p) => chosen.has(p.id)).map((p) => p.name);
    chosenLine.textContent = names.length ? `Destinataires : ${names.join(', ')}` : 'Aucun destinataire choisi.';
  }

  api.chatRecipients().then(({ recipients, quiet: q, lists }) => {
    everyone = recipients;
    quiet = q ?? null;
    quietNote.hidden = !quiet;
    quietNote.textContent = quiet?.message ?? '';
    renderLists(lists ?? []);
    picks.removeAttribute('aria-busy');
    refresh();
  }, (err) => onError(err.message));

  // Class distribution lists (a teacher's classes, the CPE's school): « Parents des élèves
  // de 5e A (52) ». Choosing one makes the message a group or an information.
  function renderLists(lists) {
    listsBox.hidden = !lists.length;
    replace(listsPicks, lists.map((l) => h('li', {}, h('label', {},
      h('input', { type: 'checkbox', name: 'list', value: `${l.class_id}:${l.audience}`,
        onchange: (e) => {
          const key = `${l.class_id}:${l.audience}`;
          if (e.target.checked) chosenLists.set(key, l); else chosenLists.delete(key);
          if (chosenLists.size && kind.value === 'direct') {
            kind.value = 'information';
            titleRow.hidden = false;
            refresh();
          }
          title.placeholder = chosenLists.size ? 'Facultatif : le nom des listes par défaut' : '';
          listsLine.textContent = chosenLists.size
            ? `Listes : ${[...chosenLists.values()].map((x) => x.label).join(', ')}` : '';
        } }), h('span', { class: 'dest-text' }, `${l.label} `, h('span', { class: 'muted' }, `(${l.count})`))))));
  }

  const form = h('form', { class: 'card compose-form', onsubmit: async (e) => {
    e.preventDefault();
    if (!chosen.size && !chosenLists.size) { onError('Choisissez au moins un destinataire.'); return; }
    submit.disabled = true;
    const answer = await conn.call('create', { kind: kind.value, members: [...chosen],
      lists: [...chosenLists.values()].map((l) => ({ class_id: l.class_id, audience: l.audience })),
      title: title.value, body: body.value, attachments: attached.map((a) => a.id) });
    submit.disabled = false;
    if (!answer.ok) { onError(answer.error.message); return; }
    onSent(answer.conversation_id);
  } },
  h('h2', { tabindex: '-1' }, 'Nouveau message'),
  quietNote,
  team ? h('p', { class: 'field' }, h('label', { for: 'conv-kind' }, 'Type'), kind) : null,
  listsBox,
  h('fieldset', { class: 'field' }, h('legend', {}, 'Destinataires'),
    h('label', { for: 'dest-filter', class: 'visually-hidden' }, 'Filtrer les destinataires'), filter, picks, chosenLine),
  titleRow,
  h('p', { class: 'field' }, h('label', { for: 'conv-body' }, 'Message'), body),
  h('p', { class: 'field' }, h('label', { for: 'conv-files' }, `Pièces jointes (${limits.types ?? 'PDF, images'} ; ${Math.round((limits.attachment_max_bytes ?? 5242880) / 1048576)} Mio au plus)`), fileInput, chips),
  h('p', {}, submit));
  return form;
}
