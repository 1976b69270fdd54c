// « Cours partagés » on Mon espace: a teacher writes a new course or reopens one; a student
// opens the courses shared with their class.
import { api } from '../api.js';
import { h, replace } from '../dom.js';

function when(seconds) {
  return new Intl.DateTimeFormat('fr-FR', {
    day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit',
  }).format(new Date(seconds * 1000));
}

export function docsSection(ctx) {
  const teacher = ctx.me.user.role === 'teacher';
  const list = h('div', { 'aria-busy': 'true' }, h('p', { class: 'muted' }, 'Chargement des cours…'));
  const error = h('div', { class: 'alert', role: 'alert' });

  async function create(button) {
    button.disabled = true;
    replace(error);
    try {
      const day = new Intl.DateTimeFormat('fr-FR', { day: 'numeric', month: 'long' }).format(new Date());
      const doc = await api.createDoc(`Nouveau cours du ${day}`);
      location.hash = `#/docs/${doc.id}`;
    } catch (err) {
      button.disabled = false;
      if (err.status === 401) ctx.fail(err, error);
      else replace(error, h('p', {}, err.message));
    }
  }

  api.docs().then(({ docs }) => {
    list.removeAttribute('aria-busy');
    replace(list, docs.length
      ? h('ul', { class: 'docs-list', 'aria-label': 'Cours' }, docs.map((d) => h('li', { class: 'doc-row' },
        h('a', { href: `#/docs/${d.id}`, class: 'doc-link' }, d.title),
        h('span', { class: 'muted' }, ` · ${d.owner.name} · modifié le ${when(d.updated_at)}`),
        d.can_edit ? null : h('span', { class: 'badge' }, 'Lecture seule'))))
      : h('p', { class: 'empty' }, teacher ? 'Aucun cours pour le moment.' : 'Aucun cours partagé avec votre classe.'));
  }, (err) => {
    list.removeAttribute('aria-busy');
    ctx.fail(err, list);
  });

  return h('section', { class: 'card docs', 'aria-labelledby': 'docs-title' },
    h('div', { class: 'board-class-head' },
      h('h2', { id: 'docs-title' }, teacher ? 'Mes cours' : 'Cours partagés'),
      teacher ? h('button', { type: 'button', class: 'btn btn-primary new-doc',
        onclick: (e) => create(e.currentTarget) }, 'Nouveau cours') : null),
    error, list);
}
