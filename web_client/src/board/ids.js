// Client ids for items and pages: `${userId}-${random}`, at most 40 characters of
// [A-Za-z0-9_-] (docs/boards.md), unique without asking the server.

export function newId(userId) {
  const who = String(userId ?? 'x').replace(/[^A-Za-z0-9_-]/g, '').slice(0, 20) || 'x';
  const bytes = crypto.getRandomValues(new Uint8Array(9));
  const random = Array.from(bytes, (b) => (b % 36).toString(36)).join('');
  return `${who}-${Date.now().toString(36).slice(-6)}${random}`;
}
