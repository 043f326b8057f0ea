/**
 * member add / remove / update / promote and move-leader, as etcdctl 3.4 runs them
 * (etcdctl/ctlv3/command/member_command.go, move_leader_command.go).
 */
import { b, call, s, type Command, type Ctx } from './cmd';
import { checkPeerUrls, goQuote, parseUint64 } from './gofmt';
import * as P from './printers';
import { Exit, exitWithError, out } from './runtime';

function memberId(args: string[]): bigint {
  if (args.length !== 1) exitWithError(Exit.BadArgs, 'member ID is not provided');
  const id = parseUint64(args[0], 16);
  if ('error' in id) return exitWithError(Exit.BadArgs, `bad member ID arg (${id.error}), expecting ID in Hex`);
  return id.value;
}

function peerUrls(raw: string): string[] {
  if (raw.length === 0) exitWithError(Exit.BadArgs, 'member peer urls not provided');
  const urls = raw.split(',');
  const bad = checkPeerUrls(urls);
  if (bad !== null) exitWithError(Exit.Error, bad);
  return urls;
}

async function memberAdd(ctx: Ctx, args: string[], learner: boolean, rawUrls: string): Promise<void> {
  if (args.length < 1) exitWithError(Exit.BadArgs, 'member name not provided');
  if (args.length > 1) {
    let ev = 'too many arguments';
    for (const a of args) if (a.toLowerCase().startsWith('http')) ev += `, did you mean --peer-urls=${a}`;
    exitWithError(Exit.BadArgs, ev);
  }
  const name = args[0];
  const urls = peerUrls(rawUrls);
  const c = ctx.client();
  const r = await call(ctx, () => c.cluster.memberAdd(urls, { isLearner: learner, timeoutMs: ctx.commandTimeoutMs }));
  P.printMemberAdd(ctx.display, r);
  if (ctx.display.format !== 'simple') return;
  // The environment a new member starts with (etcd's ETCD_* variables).
  const conf: string[] = [];
  for (const m of r.members) for (const u of m.peerUrls) conf.push(`${m.id === r.member.id ? name : m.name}=${u}`);
  out(`\nETCD_NAME=${goQuote(name)}\nETCD_INITIAL_CLUSTER=${goQuote(conf.join(','))}\nETCD_INITIAL_ADVERTISE_PEER_URLS=${goQuote(rawUrls)}\nETCD_INITIAL_CLUSTER_STATE="existing"\n`);
}

export const MEMBER_COMMANDS: Command[] = [
  {
    name: 'add',
    short: 'Adds a member into the cluster',
    usage: 'member add <memberName> [options]',
    flags: [b('learner', 'indicates if the new member is raft learner'), s('peer-urls', '', 'comma separated peer URLs for the new member.')],
    run: (ctx, args, f) => memberAdd(ctx, args, f.bool('learner'), f.str('peer-urls')),
  },
  {
    name: 'promote',
    short: 'Promotes a non-voting member in the cluster',
    long: 'Promotes a non-voting learner member to a voting one in the cluster.\n',
    usage: 'member promote <memberID>',
    flags: [],
    run: async (ctx, args) => {
      const id = memberId(args);
      const c = ctx.client();
      const r = await call(ctx, () => c.cluster.memberPromote(id, { timeoutMs: ctx.commandTimeoutMs }));
      P.printMemberChange(ctx.display, 'promoted in', id, r);
    },
  },
  {
    name: 'remove',
    short: 'Removes a member from the cluster',
    usage: 'member remove <memberID>',
    flags: [],
    run: async (ctx, args) => {
      const id = memberId(args);
      const c = ctx.client();
      const r = await call(ctx, () => c.cluster.memberRemove(id, { timeoutMs: ctx.commandTimeoutMs }));
      P.printMemberChange(ctx.display, 'removed from', id, r);
    },
  },
  {
    name: 'update',
    short: 'Updates a member in the cluster',
    usage: 'member update <memberID> [options]',
    flags: [s('peer-urls', '', 'comma separated peer URLs for the updated member.')],
    run: async (ctx, args, f) => {
      const id = memberId(args);
      const urls = peerUrls(f.str('peer-urls'));
      const c = ctx.client();
      const r = await call(ctx, () => c.cluster.memberUpdate(id, urls, { timeoutMs: ctx.commandTimeoutMs }));
      P.printMemberChange(ctx.display, 'updated in', id, r);
    },
  },
];

export const MOVE_LEADER: Command = {
  name: 'move-leader',
  short: 'Transfers leadership to another etcd cluster member.',
  usage: 'move-leader <transferee-member-id>',
  flags: [],
  run: async (ctx, args) => {
    if (args.length !== 1) exitWithError(Exit.BadArgs, 'move-leader command needs 1 argument');
    const t = parseUint64(args[0], 16);
    if ('error' in t) return exitWithError(Exit.BadArgs, t.error);
    const target = t.value;
    // Find the leader among the given endpoints: MoveLeader must be sent to it.
    for (const ep of ctx.endpoints) {
      const c = ctx.clientFor(ep);
      const st = await call(ctx, () => c.maintenance.status({ timeoutMs: ctx.commandTimeoutMs }));
      if (st.header.memberId !== st.leader) continue;
      const r = await call(ctx, () => c.maintenance.moveLeader(target, { timeoutMs: ctx.commandTimeoutMs }));
      P.printMoveLeader(ctx.display, st.leader, target, r.header);
      return;
    }
    exitWithError(Exit.BadArgs, `no leader endpoint given at [${ctx.endpoints.join(' ')}]`);
  },
};
