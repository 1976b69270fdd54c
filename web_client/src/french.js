// French as people read it: lists « Alice, Bob et Chloé » (elision of « de » before a name is
// the server's: realtime/chat/french.py writes the sentences that carry names).

/** « Alice », « Alice et Bob », « Alice, Bob et Chloé ». */
export function andList(names) {
  if (names.length < 2) return names.join('');
  return `${names.slice(0, -1).join(', ')} et ${names[names.length - 1]}`;
}

const VOWELS = new Set('aeiouyhàâäéèêëîïôöùûüœæ');

/** « de Bruno », « d'Alice », « d'Hélène »: as realtime/chat/french.py `de` writes it. */
export function de(name) {
  const n = String(name ?? '').trim();
  return VOWELS.has(n.charAt(0).toLowerCase()) ? `d'${n}` : `de ${n}`;
}
