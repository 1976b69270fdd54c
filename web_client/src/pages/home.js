// "Mon espace": the header every role shares, then what matters to that role today.
import { h, replace, setTitle } from '../dom.js';
import { roleLabel } from '../roles.js';
import { boardsSection } from './boards.js';
import { attendanceSection } from './attendance-links.js';
import { messagesLink } from './messages_link.js';
import { childrenSection } from './children.js';
import { docsSection } from './docs.js';
import { classesSection } from './classes.js';
import { timetableSection } from './timetable.js';

export function renderHome(root, ctx) {
  setTitle('Mon espace');
  const { user, school } = ctx.me;
  const schoolText = school ? `${school.name}${school.town ? ` (${school.town})` : ''}` : null;

  const header = h('header', { class: 'topbar' },
    h('div', { class: 'topbar-inner' },
      h('p', { class: 'brand' }, 'ENT des collèges'),
      h('div', { class: 'who' },
        h('p', { class: 'who-name' }, user.name),
        h('p', { class: 'who-meta' },
          h('span', { class: 'who-role' }, roleLabel(user.role)),
          schoolText ? [' · ', h('span', { class: 'who-school' }, schoolText)] : null)),
      ctx.status,
      h('button', { type: 'button', class: 'btn btn-light', onclick: ctx.logout }, 'Se déconnecter')));

  const main = h('main', { id: 'contenu', class: 'home', tabindex: '-1', 'data-role': user.role },
    h('h1', { class: 'page-title', tabindex: '-1' }, 'Mon espace'),
    user.role === 'admin' ? null : messagesLink(),
    roleContent(ctx, user.role), attendanceSection(ctx));

  replace(root, header, main);
}

function roleContent(ctx, role) {
  switch (role) {
    case 'teacher':
    case 'student':
      return [
        timetableSection(ctx, { date: ctx.date, onDateChange: ctx.rememberDate }),
        boardsSection(ctx),
        docsSection(ctx),
      ];
    case 'parent':
      return childrenSection(ctx);
    case 'cpe':
    case 'staff':
      return classesSection(ctx);
    default:
      return h('section', { class: 'card', 'aria-labelledby': 'admin-title' },
        h('h2', { id: 'admin-title' }, 'Administration du département'),
        h('p', {}, "Votre compte gère les établissements et les comptes de l'ENT."),
        h('p', {}, 'Les comptes se créent et se réinitialisent avec la commande ',
          h('code', {}, 'realtime users'), ' sur le serveur.'));
  }
}
