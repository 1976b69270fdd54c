// The version history panel: a timeline of the versions kept by hand (« Enregistrer une
// version »), automatically (every few minutes of editing, at the end of a session) and just
// before a restore. Each can be previewed, then restored (« Revenir à cette version »): the
// server first keeps today's text as a version, then writes a new edit every co-editor follows.
import { Editor } from '@tiptap/core';
import Image from '@tiptap/extension-image';
import StarterKit from '@tiptap/starter-kit';
import { api } from '../api.js';
import { h, replace } from '../dom.js';

const when = (seconds) => new Intl.DateTimeFormat('fr-FR', {
  weekday: 'long', day: 'numeric', month: 'long', hour: '2-digit', minute: '2-digit',
}).format(new Date(seconds * 1000));

const KINDS = { manual: 'enregistrée', auto: 'automatique', restore: 'avant un retour' };

export function versionsPanel(doc, { onError }) {
  const list = h('ol', { class: 'versions-list', 'aria-live': 'polite' });
  const input = h('input', { type: 'text', id: 'version-label', maxlength: '200',
    placeholder: 'ex. Avant le conseil pédagogique' });
  const message = h('p', { class: 'muted', role: 'status' });
  // A modal dialog, wide enough to read a course at 1920×1080 as on a phone (Échap closes).
  const preview = h('dialog', { class: 'version-preview', 'aria-labelledby': 'preview-title',
    onclose: () => closePreview() });
  let shown = null;

  async function load() {
    try {
      const { versions } = await api.docVersions(doc.id);
      replace(list, versions.length ? versions.map((v) => h('li', { class: `version version-${v.kind}` },
        h('span', { class: 'version-label' }, v.label),
        h('span', { class: 'muted' }, ` · ${when(v.created_at)} · ${KINDS[v.kind] ?? v.kind}`),
        h('button', { type: 'button', class: 'btn btn-light preview', onclick: () => show(v),
          'aria-label': `Aperçu de « ${v.label} » (${when(v.created_at)})` }, 'Aperçu')))
        : h('li', { class: 'empty' }, 'Aucune version enregistrée.'));
    } catch (err) { onError(err.message); }
  }

  function closePreview() {
    shown?.destroy();
    shown = null;
    if (preview.open) preview.close();
    replace(preview);
  }

  async function show(v) {
    try {
      const { content } = await api.docVersionPreview(doc.id, v.id);
      closePreview();
      const surface = h('div', { class: 'doc-surface version-surface' });
      shown = new Editor({ element: surface, editable: false, content,
        extensions: [StarterKit.configure({ undoRedo: false }), Image.configure({ inline: false })],
        editorProps: { attributes: { class: 'version-content', 'aria-label': `Aperçu de la version « ${v.label} »` } } });
      replace(preview,
        h('h3', { id: 'preview-title' }, `Aperçu : « ${v.label} »`),
        h('p', { class: 'muted' }, when(v.created_at)),
        surface,
        h('div', { class: 'version-actions' },
          doc.can_version ? h('button', { type: 'button', class: 'btn btn-primary restore',
            onclick: () => restore(v) }, 'Revenir à cette version') : null,
          h('button', { type: 'button', class: 'btn btn-light', onclick: closePreview }, "Fermer l'aperçu")));
      preview.showModal();
    } catch (err) { onError(err.message); }
  }

  async function restore(v) {
    if (!window.confirm(`Revenir à « ${v.label} » ? Le texte actuel est d'abord gardé comme version.`)) return;
    try {
      const { saved } = await api.restoreDocVersion(doc.id, v.id);
      closePreview();
      replace(message, `Document revenu à « ${v.label} ». Le texte d'avant est gardé : « ${saved.label} ».`);
      await load();
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
  // Automatic versions arrive while one works: the timeline is read again now and then.
  const every = setInterval(() => { if (!document.hidden) load(); }, 30_000);
  const panel = h('aside', { class: 'card doc-versions', 'aria-labelledby': 'versions-title' },
    h('h2', { id: 'versions-title' }, 'Historique des versions'),
    doc.can_version ? h('form', { class: 'version-form', onsubmit: save },
      h('label', { for: 'version-label' }, 'Nom de la version'), input,
      h('button', { type: 'submit', class: 'btn btn-primary save-version' }, 'Enregistrer une version'))
      : null,
    message, preview, list);
  panel.reload = load;
  panel.destroy = () => { clearInterval(every); closePreview(); };
  return panel;
}
