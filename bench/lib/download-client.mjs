// One download, timed from a fresh process: GETs the URL (argv[2], with the Authorization header argv[3] if given)
// when a line arrives on stdin, hashes the body as it arrives and prints one JSON line (status, bytes, sha256, its
// own CPU seconds). Started and made ready before a step's clock starts (`ready` on stdout), so the step times the
// transfer, not Node's start-up. Why a process of its own: hashing 1 GiB in the benchmark process cost it 1.5–2.7
// user CPU-s per GiB from round to round, for MinIO's answer and the API's alike (its heap, holding everything the
// earlier steps left, decided how much its collections cost), and on two cores the client is the slowest stage of
// a download.
import http from 'node:http';
import { createHash } from 'node:crypto';

const [url, authorization] = process.argv.slice(2);
const agent = new http.Agent({ keepAlive: false });
process.stdin.once('data', () => {
  const started = process.cpuUsage();
  const hash = createHash('sha256');
  let bytes = 0;
  const request = http.get(url, { agent, headers: authorization ? { authorization } : {} }, (response) => {
    response.on('data', (piece) => {
      hash.update(piece);
      bytes += piece.length;
    });
    response.once('end', () => {
      const cpu = process.cpuUsage(started);
      process.stdout.write(`${JSON.stringify({ status: response.statusCode, bytes, sha256: hash.digest('hex'), cpuSeconds: (cpu.user + cpu.system) / 1e6 })}\n`);
      process.exit(0);
    });
    response.once('error', fail);
  });
  request.once('error', fail);
});
process.stdout.write('ready\n');

function fail(error) {
  process.stderr.write(`${error.stack ?? error}\n`);
  process.exit(1);
}
