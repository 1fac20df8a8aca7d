// Requests to the web view's server: the token from the page's URL goes in
// the X-Flannel-Token header of every /api call (see ../server.ts for why).

const token = new URLSearchParams(location.search).get('token') ?? '';

async function answer<T>(r: Response): Promise<T> {
  const body = (await r.json()) as T & { error?: string };
  if (!r.ok) throw new Error(body.error ?? `${r.status} ${r.statusText}`);
  return body;
}

export async function get<T>(path: string, query: Record<string, string> = {}): Promise<T> {
  const q = new URLSearchParams(query).toString();
  return answer<T>(await fetch(`${path}${q ? `?${q}` : ''}`, { headers: { 'X-Flannel-Token': token } }));
}

export async function post<T>(path: string, body: Record<string, unknown>): Promise<T> {
  return answer<T>(await fetch(path, { method: 'POST', headers: { 'X-Flannel-Token': token, 'Content-Type': 'application/json' }, body: JSON.stringify(body) }));
}
