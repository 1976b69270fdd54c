// Service worker of the ENT (scope "/"): shows the vie scolaire's notices pushed by the
// server (Web Push) even when no page is open, and opens the parent space when tapped.
self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

self.addEventListener('push', (event) => {
  let data = {};
  try { data = event.data ? event.data.json() : {}; } catch { data = { body: event.data?.text() }; }
  const title = data.title || 'Vie scolaire';
  event.waitUntil(self.registration.showNotification(title, {
    body: data.body || '',
    tag: data.id ? `notice-${data.id}` : undefined,
    data: { url: data.url || '/#/absences' },
    // An absence or lateness: the parent gives the reason from here (the page opens on it).
    actions: data.event_id ? [{ action: 'motif', title: 'Donner un motif' }] : [],
    icon: '/static/favicon.svg',
    lang: 'fr',
  }));
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const url = new URL(event.notification.data?.url || '/#/absences', self.location.origin).href;
  event.waitUntil((async () => {
    const open = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
    for (const client of open) {
      if (new URL(client.url).origin === self.location.origin) {
        await client.focus();
        return client.navigate(url);
      }
    }
    return self.clients.openWindow(url);
  })());
});
