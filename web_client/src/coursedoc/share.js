// The owner's panel: rename the course, share it with the classes they teach (read-only or
// editable by the pupils). Teacher co-editors are kept as they are (the ENT sets them through the API).
import { api } from '../api.js';
import { h, replace } from '../dom.js';

const MODES = [['', 'Non partagé'], ['read', 'Lecture seule'], ['edit', 'Modifiable par les élèves']];

export function sharePanel(doc, { onRenamed, onError, taught = null }) {
  const message = h('p', { class: 'muted', role: 'status' });
  const title = h('input', { type: 'text', id: 'doc-title', maxlength: '200', value: doc.title });
  const classes = h('div', { class: 'share-classes', 'aria-busy': 'true' },
    h('p', { class: 'muted' }, 'Chargement des classes…'));
  let selects = [];

  api.classes().then(({ classes: list }) => {
    classes.removeAttribute('aria-busy');
    const current = new Map(doc.classes.map((c) => [String(c.id), c.mode]));
    // Only the classes one teaches (and any already shared): the server refuses the others.
    const mine = taught ? new Set(taught.map(String)) : null;
    const offered = mine ? list.filter((c) => mine.has(String(c.id)) || current.has(String(c.id))) : list;
    selects = offered.map((c) => {
      const select = h('select', { id: `share-${c.id}`, 'data-class-id': c.id },
        MODES.map(([value, label]) => h('option', {
          value, selected: (current.get(String(c.id)) ?? '') === value }, label)));
      return [c, select];
    });
    replace(classes, selects.length ? selects.map(([c, select]) => h('div', { class: 'share-row' },
      h('label', { for: select.id }, `Classe ${c.name}`), select))
      : h('p', { class: 'empty' }, 'Aucune classe.'));
  }, (err) => onError(err.message));

  async function rename(event) {
    event.preventDefault();
    try {
      const updated = await api.renameDoc(doc.id, title.value);
      onRenamed(updated.title);
      replace(message, 'Titre enregistré.');
    } catch (err) { onError(err.message); }
  }

  async function share(event) {
    event.preventDefault();
    const chosen = selects.filter(([, s]) => s.value).map(([c, s]) => ({ id: c.id, mode: s.value }));
    try {
      const fresh = await api.doc(doc.id); // co-editors may have changed since the page opened
      const updated = await api.shareDoc(doc.id, fresh.editors.map((e) => e.id), chosen);
      doc.classes = updated.classes;
      replace(message, chosen.length ? `Cours partagé avec ${chosen.length} classe(s).` : 'Cours non partagé.');
    } catch (err) { onError(err.message); }
  }

  return h('section', { class: 'card doc-share', 'aria-labelledby': 'share-title' },
    h('h2', { id: 'share-title' }, 'Titre et partage'),
    h('form', { class: 'version-form', onsubmit: rename },
      h('label', { for: 'doc-title' }, 'Titre du cours'), title,
      h('button', { type: 'submit', class: 'btn btn-light rename' }, 'Renommer')),
    h('form', { class: 'version-form', onsubmit: share },
      classes,
      h('button', { type: 'submit', class: 'btn btn-primary share' }, 'Enregistrer le partage')),
    message);
}
