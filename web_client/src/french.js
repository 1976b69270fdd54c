// French as people read it: « d'Alice » but « de Bruno », lists « Alice, Bob et Chloé ».

const ELIDES = /^[aeiouyhàâäéèêëîïôöùûüœæ]/i;

/** « de » before a name, elided before a vowel or an h: « d'Alice », « de Bruno ». */
export const deName = (name) => (ELIDES.test(name.trim()) ? `d'${name.trim()}` : `de ${name.trim()}`);

/** « Alice », « Alice et Bob », « Alice, Bob et Chloé ». */
export function andList(names) {
  if (names.length < 2) return names.join('');
  return `${names.slice(0, -1).join(', ')} et ${names[names.length - 1]}`;
}
