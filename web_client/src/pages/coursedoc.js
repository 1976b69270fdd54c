// A course document co-edited live (#/docs/<id>): toolbar, the text with co-editors' named
// carets, who is here, the connection's state, and the version history.
import { api } from '../api.js';
import { h, replace, setTitle } from '../dom.js';
import { openEditor } from '../coursedoc/editor.js';
import { sharePanel } from '../coursedoc/share.js';
import { toolbar } from '../coursedoc/toolbar.js';
import { versionsPanel } from '../coursedoc/versions.js';
import { sinceText, watchRoster } from '../roster.js';

const STATUS = {
  connecting: 'Connexion…', connected: 'Connecté', synced: 'À jour', disconnected: 'Reconnexion…',
};

export function renderCourseDoc(root, { docId, me, fail }) {
  setTitle('Cours');
  const main = h('main', { id: 'contenu', class: 'doc-page', tabindex: '-1' },
    h('p', { class: 'muted' }, 'Chargement du cours…'));
  replace(root, main);
  let session = null;
  let roster = null;
  let left = false;

  api.doc(docId).then((doc) => {
    if (left) return;
    setTitle(doc.title);
    const error = h('div', { class: 'alert', role: 'alert' });
    const showError = (text) => replace(error, h('p', {}, text));
    const status = h('span', { class: 'doc-status', role: 'status' }, STATUS.connecting);
    const people = h('ul', { class: 'doc-people', 'aria-label': 'Personnes présentes' });
    const surface = h('div', { class: 'doc-surface' });
    session = openEditor(surface, {
      docId, user: me.user, editable: doc.can_edit,
      onStatus: (s) => { status.textContent = STATUS[s] ?? s; status.dataset.state = s; },
      onPeople: (list) => replace(people, list.map((p) => h('li', { class: 'doc-person',
        style: `--who:${p.color}`, title: p.me ? 'vous' : p.name }, p.me ? `${p.name} (vous)` : p.name))),
      onDenied: () => showError('Ce cours est en lecture seule pour vous : vos modifications ne sont pas enregistrées.'),
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
    const editorColumn = h('div', { class: 'doc-main card' },
      h('div', { class: 'doc-head' }, heading, status),
      doc.can_edit ? toolbar(session.editor, { onError: showError })
        : h('p', { class: 'badge' }, 'Lecture seule'),
      error, surface);
    replace(main,
      h('p', {}, h('a', { href: '#/' }, '← Mon espace')),
      h('div', { class: 'doc-layout' }, editorColumn,
        h('div', { class: 'doc-side' },
          h('section', { class: 'card', 'aria-labelledby': 'people-title' },
            h('h2', { id: 'people-title' }, 'En ce moment'), people,
            h('h3', { class: 'doc-openers-title' }, 'Cours ouvert par'), openers),
          versionsPanel(doc, { onError: showError }),
          doc.can_manage ? sharePanel(doc, {
            onError: showError,
            onRenamed: (title) => { heading.textContent = title; setTitle(title); },
          }) : null)));
  }, (err) => fail(err, main));

  return () => {
    left = true;
    session?.destroy();
    roster?.close();
    if (window.__coursedoc === session) delete window.__coursedoc;
  };
}
