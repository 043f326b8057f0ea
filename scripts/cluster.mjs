// `npm run cluster`: a 3-member cairn cluster on loopback for demos and development, in
// the spirit of etcd's Procfile. Clients on 127.0.0.1:12379, 22379, 32379 is etcd's
// layout, but 32379 is in the ephemeral range here, so cairn uses 12379, 22379, 22479
// (peers 12380, 22380, 22480). Data in ./cluster.cairn/<name>. Ctrl-C stops all three.
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const members = [
  { name: 'infra1', client: 12379, peer: 12380 },
  { name: 'infra2', client: 22379, peer: 22380 },
  { name: 'infra3', client: 22479, peer: 22480 },
];
const initialCluster = members.map((m) => `${m.name}=http://127.0.0.1:${m.peer}`).join(',');
const dataRoot = join(process.cwd(), 'cluster.cairn');
mkdirSync(dataRoot, { recursive: true });
const children = members.map((m) => {
  const args = [
    join(root, 'dist', 'src', 'bin', 'cairn.js'),
    '--name', m.name,
    '--data-dir', join(dataRoot, m.name),
    '--listen-client-urls', `http://127.0.0.1:${m.client}`,
    '--advertise-client-urls', `http://127.0.0.1:${m.client}`,
    '--listen-peer-urls', `http://127.0.0.1:${m.peer}`,
    '--initial-advertise-peer-urls', `http://127.0.0.1:${m.peer}`,
    '--initial-cluster-token', 'cairn-cluster-1',
    '--initial-cluster', initialCluster,
    '--initial-cluster-state', 'new',
  ];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit'] });
  child.on('exit', (code, signal) => console.error(`${m.name} exited (${signal ?? code})`));
  return child;
});
console.error(`cairn cluster: etcdctl --endpoints ${members.map((m) => `127.0.0.1:${m.client}`).join(',')} member list`);
const stop = () => {
  for (const c of children) c.kill('SIGTERM');
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
