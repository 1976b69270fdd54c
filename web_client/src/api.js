// The HTTP API: same origin, the HttpOnly session cookie authenticates every call.

/** A refusal from the server, with its French message meant for people. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const NETWORK_MESSAGE = 'Le serveur ne répond pas. Vérifiez la connexion puis réessayez.';

async function send(path, init) {
  let response;
  try {
    response = await fetch(path, { ...init, credentials: 'same-origin' });
  } catch {
    throw new ApiError(0, 'network', NETWORK_MESSAGE);
  }
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const err = data?.error ?? {};
    throw new ApiError(
      response.status,
      err.code ?? 'internal',
      err.message ?? `Erreur du serveur (${response.status}).`,
    );
  }
  return data;
}

function request(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (body === undefined) return send(path, { method, headers });
  headers['Content-Type'] = 'application/json';
  return send(path, { method, headers, body: JSON.stringify(body) });
}

/**
 * The one HTTP helper: `method` on `path` with a JSON `body` (if any); resolves to the JSON
 * answer, or throws `ApiError` (the server's French message, its code and HTTP status; code
 * `network` when the server cannot be reached). For the calls `api` below does not name.
 */
export const apiJson = request;

/**
 * POST a file as the raw body (`contentType`: its type), or a `FormData` (multipart: the
 * browser writes its own Content-Type); the JSON answer, or `ApiError`.
 */
export function apiUpload(path, body, contentType) {
  const headers = { Accept: 'application/json' };
  if (!(body instanceof FormData)) {
    headers['Content-Type'] = contentType || body.type || 'application/octet-stream';
  }
  return send(path, { method: 'POST', body, headers });
}

const query = (params) => {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null) q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : '';
};

export const api = {
  login: (login, code) => request('POST', '/api/login', { login, code }),
  logout: () => request('POST', '/api/logout'),
  me: () => request('GET', '/api/me'),
  config: () => request('GET', '/api/config'),
  timetable: (date, studentId) =>
    request('GET', `/api/timetable${query({ date, student_id: studentId })}`),
  children: () => request('GET', '/api/children'),
  classes: () => request('GET', '/api/classes'),
  classStudents: (classId) =>
    request('GET', `/api/classes/${encodeURIComponent(classId)}/students`),
  guardianContacts: (studentId) =>
    request('GET', `/api/students/${encodeURIComponent(studentId)}/guardians`),
  boards: (classId) => request('GET', `/api/boards${query({ class_id: classId })}`),
  board: (id) => request('GET', `/api/boards/${encodeURIComponent(id)}`),
  createBoard: (title, classId, slotId) =>
    request('POST', '/api/boards', { title, class_id: classId, slot_id: slotId ?? undefined }),
  presenceClasses: () => request('GET', '/api/presence/classes'),
  chatRecipients: () => request('GET', '/api/chat/recipients'),
  chatConversations: () => request('GET', '/api/chat/conversations'),
  chatReports: () => request('GET', '/api/chat/reports'),
  chatHandleReport: (reportId, body) =>
    request('POST', `/api/chat/reports/${encodeURIComponent(reportId)}/handle`, body),
  chatSettings: (schoolId) => request('GET', `/api/chat/settings/${encodeURIComponent(schoolId)}`),
  chatSaveSettings: (schoolId, rules) =>
    request('PUT', `/api/chat/settings/${encodeURIComponent(schoolId)}`, rules),
  docs: () => request('GET', '/api/docs'),
  doc: (id) => request('GET', `/api/docs/${encodeURIComponent(id)}`),
  createDoc: (title) => request('POST', '/api/docs', { title }),
  renameDoc: (id, title) => request('PATCH', `/api/docs/${encodeURIComponent(id)}`, { title }),
  shareDoc: (id, editors, classes) =>
    request('PUT', `/api/docs/${encodeURIComponent(id)}/access`, { editors, classes }),
  docVersions: (id) => request('GET', `/api/docs/${encodeURIComponent(id)}/versions`),
  createDocVersion: (id, label) =>
    request('POST', `/api/docs/${encodeURIComponent(id)}/versions`, { label }),
  docVersionPreview: (id, versionId) => request('GET',
    `/api/docs/${encodeURIComponent(id)}/versions/${encodeURIComponent(versionId)}`),
  restoreDocVersion: (id, versionId) => request('POST',
    `/api/docs/${encodeURIComponent(id)}/versions/${encodeURIComponent(versionId)}/restore`),
};
