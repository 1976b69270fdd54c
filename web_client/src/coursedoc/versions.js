// The version history panel: list the named versions, keep a new one, go back to one
// (« Revenir à la version du … »): the server writes a new edit, so every co-editor follows.
import { api } from '../api.js';
import { h, replace } from '../dom.js';

const when = (seconds) => new Intl.DateTimeFormat('fr-FR', {
  weekday: 'long', day: 'numeric', month: 'long', hour: '2-digit', minute: '2-digit',
}).format(new Date(seconds * 1000));

export function versionsPanel(doc, { onError }) {
  const list = h('ul', { class: 'versions-list', 'aria-live': 'polite' });
  const input = h('input', { type: 'text', id: 'version-label', maxlength: '200',
    placeholder: 'ex. Avant le conseil pédagogique' });
  const message = h('p', { class: 'muted', role: 'status' });

  async function load() {
    try {
      const { versions } = await api.docVersions(doc.id);
      replace(list, versions.length ? versions.map((v) => h('li', { class: 'version' },
        h('span', { class: 'version-label' }, v.label),
        h('span', { class: 'muted' }, ` · ${when(v.created_at)}`),
        doc.can_version ? h('button', { type: 'button', class: 'btn btn-light restore',
          onclick: () => restore(v) }, `Revenir à la version du ${when(v.created_at)}`) : null))
        : h('li', { class: 'empty' }, 'Aucune version enregistrée.'));
    } catch (err) { onError(err.message); }
  }

  async function restore(v) {
    if (!window.confirm(`Revenir à « ${v.label} » ? Le texte actuel restera dans l'historique.`)) return;
    try {
      await api.restoreDocVersion(doc.id, v.id);
      replace(message, `Document revenu à « ${v.label} ».`);
    } catch (err) { onError(err.message); }
  }

  async function save(event) {
    event.preventDefault();
    const label = input.value.trim() || `Version du ${when(Date.now() / 1000)}`;
    try {
      await api.createDocVersion(doc.id, label);
      input.value = '';
      replace(message, `Version « ${label} » enregistrée.`);
      await load();
    } catch (err) { onError(err.message); }
  }

  load();
  return h('aside', { class: 'card doc-versions', 'aria-labelledby': 'versions-title' },
    h('h2', { id: 'versions-title' }, 'Historique des versions'),
    doc.can_version ? h('form', { class: 'version-form', onsubmit: save },
      h('label', { for: 'version-label' }, 'Nom de la version'), input,
      h('button', { type: 'submit', class: 'btn btn-primary save-version' }, 'Enregistrer une version'))
      : null,
    message, list);
}
