// The one reader of subnet.env's format, for everyone who reads the file:
// flanneld (its previous subnet), the CNI plugin, mk-docker-opts and the lab.
// Each caller interprets the keys and reports problems in its own way (the
// daemon logs and carries on, the plugin answers with CNI error codes 6 and
// 11, the lab throws); the lines are split here only.

/**
 * Parses dotenv text the way godotenv (flannel's reader) does for the lines
 * flannel writes: KEY=VALUE, optional `export `, quotes, # comments.
 */
export function parseEnvText(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (let line of text.split(/\r?\n/)) {
    line = line.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (line.startsWith('export ')) line = line.slice(7).trim();
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    const key = line.slice(0, eq).trim();
    let value = line.slice(eq + 1).trim();
    const q = value[0];
    if ((q === '"' || q === "'") && value.length >= 2 && value.endsWith(q)) {
      value = value.slice(1, -1);
    } else {
      const hash = value.indexOf(' #');
      if (hash >= 0) value = value.slice(0, hash).trim();
    }
    out.set(key, value);
  }
  return out;
}
