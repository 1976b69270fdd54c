// Small rules of written French the attendance pages need (never « 1 absent·es »,
// « salle Salle 126 » or « de Alice »).

/** « 1 absent·e », « 2 absent·es »; `plural` defaults to the word + 's'. */
export function count(n, singular, plural = `${singular}s`) {
  return `${n} ${n > 1 ? plural : singular}`;
}

/** « de Paul », « d'Alice », « d'Hugo ». */
export function ofName(name) {
  return /^[aeiouyâàéèêëîïôöûùüh]/i.test(name) ? `d'${name}` : `de ${name}`;
}

/** « salle 126 » from "Salle 126", « salle B12 » from "B12". */
export function roomPhrase(room) {
  const r = (room ?? '').trim();
  return /^salle\b/i.test(r) ? `salle${r.slice(5)}` : `salle ${r}`;
}

/** When a history line or a decision happened, in the school's words. */
export function when(ts) {
  return new Date(ts * 1000).toLocaleString('fr-FR', { weekday: 'short', day: 'numeric',
    month: 'short', hour: '2-digit', minute: '2-digit' });
}
