// A Socket.IO connection the server refused because it could not check the session (its
// database or Redis restarting: `connect_error` with `data.code === 'unavailable'`) is tried
// again a moment later, spread out so that a whole school does not come back at the same
// instant. Any other refusal (no session) stays final. Socket.IO does not retry a refused
// connection by itself.
export function retryIfUnavailable(socket, err, stillWanted = () => true) {
  if (socket.active || err?.data?.code !== 'unavailable') return false;
  setTimeout(() => { if (stillWanted() && !socket.connected) socket.connect(); },
    1000 + Math.random() * 3000);
  return true;
}
