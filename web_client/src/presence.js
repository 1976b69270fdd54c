// Connected counts per class for the school team (CPE, administration): « 3 en ligne » on
// each class of « Classes de l'établissement », from GET /api/presence/classes (docs/presence.md).
import { api } from './api.js';
import { h } from './dom.js';

const REFRESH_MS = 30_000;

/** Add the counts to the class buttons inside `container`; returns a function that stops. */
export function onlineCounts(container) {
  let timer = 0;
  async function refresh() {
    try {
      const { classes } = await api.presenceClasses();
      for (const c of classes) {
        const button = container.querySelector(`button[data-class-id="${CSS.escape(String(c.id ?? c.class_id))}"]`);
        if (!button) continue;
        // Beside the button, not in it: the button keeps its name (« 6e A 25 élèves »).
        let badge = button.parentElement.querySelector('.class-online');
        if (!badge) {
          badge = h('span', { class: 'class-online', 'data-online-for': button.dataset.classId });
          button.after(badge);
        }
        badge.textContent = `${c.online} en ligne`;
        badge.dataset.online = String(c.online);
      }
    } catch { /* counts are a help, not a must: the list stays as it is */ }
    if (container.isConnected) timer = setTimeout(refresh, REFRESH_MS);
  }
  refresh();
  return () => clearTimeout(timer);
}
