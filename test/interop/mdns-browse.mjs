// A neutral mDNS browser for tests: asks for _presence._tcp.local and prints
// every record it hears as one JSON line (TXT strings decoded as UTF-8).
import multicastDns from 'multicast-dns';

const m = multicastDns();
const ask = () => m.query([{ name: '_presence._tcp.local', type: 'PTR' }]);
m.on('response', (packet) => {
  for (const r of [...packet.answers, ...packet.additionals]) {
    const data = r.type === 'TXT' ? r.data.map((b) => b.toString('utf8')) : r.data;
    process.stdout.write(`${JSON.stringify({ name: r.name, type: r.type, ttl: r.ttl, flush: r.flush ?? false, data })}\n`);
  }
});
m.on('ready', ask);
const timer = setInterval(ask, 1000);
process.on('SIGTERM', () => {
  clearInterval(timer);
  m.destroy(() => process.exit(0));
});
