// The way into the messagerie from Mon espace, with the unread count (muted ones excepted).
import { api } from '../api.js';
import { h } from '../dom.js';

export function messagesLink() {
  const badge = h('span', { class: 'badge', hidden: true });
  const link = h('a', { class: 'btn btn-primary messages-link', href: '#/messages' }, 'Messagerie ', badge);
  api.chatConversations().then((data) => {
    if (data.unread > 0) {
      badge.hidden = false;
      badge.textContent = String(data.unread);
      badge.setAttribute('aria-label', `${data.unread} message${data.unread > 1 ? 's' : ''} non lu${data.unread > 1 ? 's' : ''}`);
    }
  }, () => {});
  return h('nav', { class: 'quick-links', 'aria-label': 'Accès rapides' }, link);
}
