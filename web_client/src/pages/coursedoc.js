// A course document co-edited live (#/docs/<id>): toolbar, the text with co-editors' named
// carets, who is here, the connection's state, and the version history.
import { api } from '../api.js';
import { h, replace, setTitle } from '../dom.js';
import { openEditor } from '../coursedoc/editor.js';
import { insertImages } from '../coursedoc/images.js';
import { sharePanel } from '../coursedoc/share.js';
import { toolbar } from '../coursedoc/toolbar.js';
import { versionsPanel } from '../coursedoc/versions.js';
import { sinceText, watchRoster } from '../roster.js';

const STATUS = {
  connecting: 'Connexion…', connected: 'Connecté', synced: 'À jour', disconnected: 'Reconnexion…',
  revoked: 'Accès retiré', deleted: 'Cours supprimé',
};
const CLOSED = {
  4403: ['revoked', 'Ce cours ne vous est plus partagé. Ce qui est affiché n\'est plus enregistré : '
    + 'copiez ce que vous venez d\'écrire si vous voulez le garder.'],
  4404: ['deleted', 'Ce cours a été supprimé par son auteur. Ce qui est affiché n\'est plus enregistré.'],
};

export function renderCourseDoc(root, { docId, me, fail }) {
  setTitle('Cours');
  const main = h('main', { id: 'contenu', class: 'doc-page', tabindex: '-1' },
    h('p', { class: 'muted' }, 'Chargement du cours…'));
  replace(root, main);
  let session = null;
  let roster = null;
  let versions = null;
  let left = false;

  api.doc(docId).then((doc) => {
    if (left) return;
    setTitle(doc.title);
    const error = h('div', { class: 'alert', role: 'alert' });
    const notice = h('p', { class: 'doc-notice', role: 'status' });
    const showError = (text) => replace(error, h('p', {}, text));
    const status = h('span', { class: 'doc-status', role: 'status' }, STATUS.connecting);
    const setStatus = (s) => { status.textContent = STATUS[s] ?? s; status.dataset.state = s; };
    const people = h('ul', { class: 'doc-people', 'aria-label': 'Personnes présentes' });
    const surface = h('div', { class: 'doc-surface' });
    let ended = false;
    session = openEditor(surface, {
      docId, user: me.user, editable: doc.can_edit,
      onStatus: (s) => { if (!ended) setStatus(s); },
      onPeople: (list) => replace(people, list.map((p) => h('li', { class: 'doc-person',
        style: `--who:${p.color}`, title: p.me ? 'vous' : p.name }, p.me ? `${p.name} (vous)` : p.name))),
      onDenied: () => showError('Ce cours est en lecture seule pour vous : vos modifications ne sont pas enregistrées.'),
      // The owner changed this class's access: takes effect now, no reload.
      onAccess: (mode) => {
        setEditable(mode === 'edit');
        replace(error);
        replace(notice, mode === 'edit' ? 'Vous pouvez maintenant modifier ce cours.'
          : 'Ce cours est maintenant en lecture seule pour vous.');
      },
      // Unshared or deleted: read-only at once, and said so (no endless « Reconnexion… »).
      onClosed: ({ code }) => {
        const [state, text] = CLOSED[code] ?? ['revoked', 'La connexion au cours a été fermée.'];
        ended = true;
        replace(notice);
        setEditable(false);
        setStatus(state);
        showError(text);
      },
      onImages: (files) => insertImages(session.editor, docId, files, showError),
      onRefused: (code, reason) => showError(code === 1013
        ? 'Connexion trop lente : le cours se recharge.'
        : `Modification refusée par le serveur${reason ? ` : ${reason}` : '.'}`),
    });
    window.__coursedoc = session; // test hook (browser tests)
    // Who has the course open, from the presence store (every server process; what other
    // ENT services read at GET /api/presence/doc:<id>), with since when.
    const openers = h('ul', { class: 'doc-openers', 'aria-label': 'Cours ouvert par' });
    roster = watchRoster((users) => {
      const list = [...users.values()].sort((a, b) => a.name.localeCompare(b.name, 'fr'));
      replace(openers, list.length ? list.map((u) => h('li', { 'data-user-id': u.id },
        String(u.id) === String(me.user.id) ? `${u.name} (vous)` : u.name,
        h('span', { class: 'muted' }, ` depuis ${sinceText(u.since)}`
          + (u.devices > 1 ? ` · ${u.devices} appareils` : ''))))
        : h('li', { class: 'empty' }, 'Personne pour le moment.'));
    });
    roster.watch(`doc:${docId}`);
    const heading = h('h1', { class: 'page-title', tabindex: '-1' }, doc.title);
    versions = versionsPanel(doc, { onError: showError });
    const tools = toolbar(session.editor, { onError: showError,
      onImages: (files) => insertImages(session.editor, docId, files, showError) });
    const readOnly = h('p', { class: 'badge' }, 'Lecture seule');
    function setEditable(on) {
      session.editor.setEditable(on);
      tools.hidden = !on;
      readOnly.hidden = on;
    }
    setEditable(doc.can_edit);
    const fmt = (f) => `/api/docs/${encodeURIComponent(docId)}?format=${f}`;
    const exports = h('nav', { class: 'doc-exports', 'aria-label': 'Exporter le cours' },
      h('a', { class: 'btn btn-light', href: fmt('md'), download: `${doc.title}.md` }, 'Exporter (Markdown)'),
      h('a', { class: 'btn btn-light', href: fmt('html'), download: `${doc.title}.html` }, 'Exporter (HTML)'),
      h('button', { type: 'button', class: 'btn btn-light print', onclick: () => window.print() }, 'Imprimer'));
    const editorColumn = h('div', { class: 'doc-main card' },
      h('div', { class: 'doc-head' }, heading, status),
      tools, readOnly, notice, error, surface, exports);
    replace(main,
      h('p', {}, h('a', { href: '#/' }, '← Mon espace')),
      h('div', { class: 'doc-layout' }, editorColumn,
        h('div', { class: 'doc-side' },
          h('section', { class: 'card', 'aria-labelledby': 'people-title' },
            h('h2', { id: 'people-title' }, 'En ce moment'), people,
            h('h3', { class: 'doc-openers-title' }, 'Cours ouvert par'), openers),
          versions,
          doc.can_manage ? sharePanel(doc, {
            onError: showError,
            taught: me.class_ids,
            onRenamed: (title) => { heading.textContent = title; setTitle(title); },
          }) : null)));
  }, (err) => fail(err, main));

  return () => {
    left = true;
    session?.destroy();
    roster?.close();
    versions?.destroy();
    if (window.__coursedoc === session) delete window.__coursedoc;
  };
}
