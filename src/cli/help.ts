/**
 * etcdctl's help output (etcdctl/ctlv3/help.go's template over cobra's commands), laid
 * out by Go's text/tabwriter (minwidth 0, tabwidth 8, padding 1, padding with tabs), so
 * `cairnctl <cmd> --help` and the usage printed on a wrong flag match etcdctl's.
 */
import type { Command } from './cmd';
import { GLOBAL_FLAGS, flagUsageLine, type FlagSpec } from './flags';

const TAB_WIDTH = 8;

/** Go's tabwriter.NewWriter(w, 0, 8, 1, '\t', 0) over the whole text. */
export function tabwrite(text: string): string {
  const lines = text.split('\n').map((l) => l.split('\t'));
  const widths: number[][] = lines.map(() => []);
  const cellw = (s: string): number => [...s].length;
  const format = (line0: number, line1: number, col: number): void => {
    for (let i = line0; i < line1; i++) {
      if (col >= lines[i].length - 1) continue;
      let width = 0;
      let j = i;
      for (; j < line1 && col < lines[j].length - 1; j++) width = Math.max(width, cellw(lines[j][col]) + 1);
      for (let k = i; k < j; k++) widths[k][col] = width;
      format(i, j, col + 1);
      i = j - 1;
    }
  };
  format(0, lines.length, 0);
  return lines
    .map((cells, li) =>
      cells
        .map((c, ci) => {
          if (ci === cells.length - 1) return c;
          const w = Math.ceil(widths[li][ci] / TAB_WIDTH) * TAB_WIDTH;
          return c + '\t'.repeat(Math.ceil((w - cellw(c)) / TAB_WIDTH));
        })
        .join(''),
    )
    .join('\n');
}

const HELP_FLAG = (name: string): FlagSpec => ({ name: 'help', short: 'h', kind: 'bool', default: 'false', usage: `help for ${name}` });

/** Leaf commands under cmd, with names relative to it ("alarm disarm" from the root). */
function leaves(list: Command[], prefix: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const c of [...list].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    if (c.sub && c.run === undefined) out.push(...leaves(c.sub, `${prefix}${c.name} `));
    else out.push([prefix + c.name, c.short]);
  }
  return out;
}

const byName = (a: FlagSpec, b: FlagSpec): number => (a.name < b.name ? -1 : 1);

/** The help of one command (path: the commands from the root down to it). */
export function commandHelp(path: Command[]): string {
  const cmd = path[path.length - 1];
  const name = path.map((c) => c.name).join(' ');
  const t: string[] = ['NAME:', `\t${name} - ${cmd.short}`, '', 'USAGE:', `\tetcdctl ${cmd.usage} [flags]`, ''];
  if (cmd.sub) {
    t.push('API VERSION:', '\t3.4', '', '', 'COMMANDS:');
    for (const [n, short] of leaves(cmd.sub, '')) t.push(`\t${n}\t${short}`);
    t.push('');
  }
  if (cmd.long) {
    t.push('DESCRIPTION:');
    for (const l of cmd.long.replace(/\n$/, '').split('\n')) t.push(`\t${l}`);
    t.push('');
  }
  t.push('OPTIONS:');
  for (const f of [...cmd.flags, ...(cmd.persistentFlags ?? []), HELP_FLAG(cmd.name)].sort(byName)) t.push(flagUsageLine(f));
  t.push('', 'GLOBAL OPTIONS:');
  const inherited = path.slice(0, -1).flatMap((c) => c.persistentFlags ?? []);
  for (const f of [...GLOBAL_FLAGS, ...inherited].sort(byName)) t.push(flagUsageLine(f));
  return tabwrite(t.join('\n')) + '\n\n';
}

/** `etcdctl` / `etcdctl --help` (cobra lists -h there, except after `help <unknown topic>`). */
export function rootHelp(rootCommands: Command[], helpFlag = true): string {
  const t: string[] = ['NAME:', '\tetcdctl - A simple command line client for etcd3.', '', 'USAGE:', '\tetcdctl [flags]', '', 'VERSION:', '\t3.4.23', '', 'API VERSION:', '\t3.4', '', '', 'COMMANDS:'];
  for (const [n, short] of leaves(rootCommands, '')) t.push(`\t${n}\t${short}`);
  t.push('', 'OPTIONS:');
  for (const f of [...GLOBAL_FLAGS, ...(helpFlag ? [HELP_FLAG('etcdctl')] : [])].sort(byName)) t.push(flagUsageLine(f));
  return tabwrite(t.join('\n')) + '\n\n';
}
