/** Tests' TCP client: what a server at 127.0.0.1:`port` sends before it closes the connection. */
import net from 'node:net';

export function readToEnd(port: number, host = '127.0.0.1'): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = net.connect(port, host);
    let text = '';
    c.on('data', (b) => (text += String(b)));
    c.on('end', () => resolve(text));
    c.on('error', reject);
  });
}
