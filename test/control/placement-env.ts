// The environment the placement planner's golden transcripts run in: a cluster described by hand
// (nodes, groups, factors), the moves the controller would have recorded, and a fake controller that
// applies every planned step as if it succeeded. Commands (test/raft/datadriven.ts syntax):
//
//   settings grace=<ms> moves=<k> [stall=<ms>]      nodeGoneGraceMs, movesPerNodeMax, moveStalledMs
//   factor kind=<kind> n=<k>
//   node id=<id> [live=false gone=<ms since>] [draining=true]   add or replace a node
//   drop id=<id>                                    the node leaves the registry
//   group id=<g> voters=(..) [learners=(..)] leader=<id> [kind=kv|db] [factor=<k>] [caught=(..)] [pending=true]
//                                                   kind=db: a database shard's group (its own factor, rebuildable)
//   groups n=<k> nodes=(..) [factor=<k>]            k groups at their initial placement (placement-initial.ts)
//   plan now=<ms>                                   print the steps and the statuses, apply nothing
//   run now=<ms> [rounds=<k>] [catchup=manual]      plan and apply until nothing is left to do
//   caught group=<g> node=<id> | caught all [now=<ms>]   a learner (every learner) caught up (progress at now)
//   load-failed group=<g> node=<id> error="<text>"   the node's copy of the group's shard failed to load
//   load-cleared group=<g>                          its load failures no longer stand (a reload's new version)
//   layout                                          groups, moves, replicas and primaries per node
//
// A learner added by `run` catches up at once (its promotion comes in the next round) unless
// catchup=manual. As the controller does, a move makes progress (its `progressMs`) whenever a step
// of it is applied or a learner is caught up by hand (at its `now`, else the last one seen); `fail=true` on
// `run` applies nothing but the recording and finishing of moves (every membership change and
// transfer refused).

import { NO_NODE, type GroupId, type NodeId } from '../../src/base/ids.ts';
import { initialPlacement } from '../../src/control/placement-initial.ts';
import {
  placementDefaults,
  planPlacement,
  type GroupPlacementStatus,
  type LoadFailureOf,
  type PlacementGroup,
  type PlacementMove,
  type PlacementNode,
  type PlacementSettings,
  type PlacementStep,
} from '../../src/control/placement-planner.ts';
import { argOf, idsOf, numOf, type CmdArg, type TestBlock } from '../raft/datadriven.ts';

const arg = argOf;
const num = numOf;
const ids = (args: readonly CmdArg[], key: string): NodeId[] => idsOf<NodeId>(args, key);

export interface GroupState {
  id: GroupId;
  kind: string;
  factor?: number;
  rebuildable?: boolean;
  voters: NodeId[];
  learners: NodeId[];
  leader: NodeId;
  caughtUp: NodeId[];
  changePending: boolean;
  loadFailures?: LoadFailureOf[];
}

export class PlacementEnv {
  private settings: PlacementSettings = placementDefaults;
  private readonly factors = new Map<string, number>();
  private readonly nodes = new Map<NodeId, PlacementNode>();
  private readonly groups = new Map<GroupId, GroupState>();
  private readonly moves = new Map<GroupId, PlacementMove>();
  private lastNowMs = 0;

  handle(block: TestBlock): string {
    const a = block.args;
    switch (block.cmd) {
      case 'settings':
        this.settings = {
          nodeGoneGraceMs: num(a, 'grace'),
          movesPerNodeMax: num(a, 'moves'),
          moveStalledMs: num(a, 'stall', placementDefaults.moveStalledMs),
        };
        return 'ok';
      case 'factor':
        this.factors.set(arg(a, 'kind') ?? 'kv', num(a, 'n'));
        return 'ok';
      case 'node':
        this.setNode(a);
        return 'ok';
      case 'drop':
        this.nodes.delete(num(a, 'id') as NodeId);
        return 'ok';
      case 'group':
        this.setGroup(a);
        return 'ok';
      case 'groups':
        this.placeGroups(num(a, 'n'), ids(a, 'nodes'), num(a, 'factor', 3));
        return this.layout();
      case 'caught': {
        // `caught all`: every learner of every group.
        if (a.some((x) => x.key === 'all'))
          for (const group of this.groups.values()) group.caughtUp.push(...group.learners);
        else this.group(num(a, 'group') as GroupId).caughtUp.push(num(a, 'node') as NodeId);
        const atMs = num(a, 'now', this.lastNowMs);
        for (const [group, move] of this.moves) this.moves.set(group, { ...move, progressMs: atMs });
        return 'ok';
      }
      case 'load-failed': {
        const group = this.group(num(a, 'group') as GroupId);
        const node = num(a, 'node') as NodeId;
        const others = (group.loadFailures ?? []).filter((failure) => failure.node !== node);
        group.loadFailures = [...others, { node, error: arg(a, 'error') ?? 'failed' }];
        return 'ok';
      }
      case 'load-cleared':
        delete this.group(num(a, 'group') as GroupId).loadFailures;
        return 'ok';
      case 'plan': {
        const plan = this.plan(num(a, 'now'));
        return [
          ...plan.steps.map(describeStep),
          ...plan.groups.filter((g) => g.state !== 'ok' && g.state !== 'moving').map(describeStatus),
        ]
          .join('\n')
          .trim();
      }
      case 'run':
        return this.run(num(a, 'now'), num(a, 'rounds', 50), arg(a, 'catchup') !== 'manual', arg(a, 'fail') === 'true');
      case 'layout':
        return this.layout();
      default:
        throw new Error(`${block.pos}: unknown command ${block.cmd}`);
    }
  }

  private setNode(a: readonly CmdArg[]): void {
    const id = num(a, 'id') as NodeId;
    const live = arg(a, 'live') !== 'false';
    const gone = arg(a, 'gone');
    this.nodes.set(id, {
      id,
      live,
      ...(gone === undefined ? {} : { goneSinceMs: Number(gone) }),
      ...(arg(a, 'draining') === 'true' ? { draining: true } : {}),
    });
  }

  private setGroup(a: readonly CmdArg[]): void {
    const id = num(a, 'id') as GroupId;
    const kind = arg(a, 'kind') ?? 'kv';
    const factor = arg(a, 'factor');
    this.groups.set(id, {
      id,
      kind,
      // A database shard's group: its own factor, and founded again when it lost its quorum for good.
      ...(factor === undefined ? {} : { factor: Number(factor) }),
      ...(kind === 'db' ? { rebuildable: true } : {}),
      voters: ids(a, 'voters'),
      learners: ids(a, 'learners'),
      leader: num(a, 'leader', 0) as NodeId,
      caughtUp: ids(a, 'caught'),
      changePending: arg(a, 'pending') === 'true',
    });
  }

  private placeGroups(n: number, nodes: readonly NodeId[], factor: number): void {
    const groups = Array.from({ length: n }, (_, g) => (g + 1) as GroupId);
    for (const { group, voters } of initialPlacement(nodes, groups, factor)) {
      this.groups.set(group, {
        id: group,
        kind: 'kv',
        voters: [...voters],
        learners: [],
        leader: voters[0] ?? NO_NODE,
        caughtUp: [],
        changePending: false,
      });
    }
  }

  private group(id: GroupId): GroupState {
    const group = this.groups.get(id);
    if (group === undefined) throw new Error(`no group ${id}`);
    return group;
  }

  /** For property tests: the cluster as it stands, and one round planned and applied. */
  state(): { readonly groups: readonly GroupState[]; readonly moves: readonly PlacementMove[] } {
    return { groups: [...this.groups.values()], moves: [...this.moves.values()] };
  }
  putNode(node: PlacementNode): void {
    this.nodes.set(node.id, node);
  }
  putGroup(group: GroupState): void {
    this.groups.set(group.id, group);
  }
  setSettings(settings: PlacementSettings): void {
    this.settings = settings;
  }
  round(nowMs: number): ReturnType<typeof planPlacement> {
    const plan = this.plan(nowMs);
    for (const step of plan.steps) this.apply(step, true, false);
    return plan;
  }

  plan(nowMs: number): ReturnType<typeof planPlacement> {
    this.lastNowMs = nowMs;
    const groups: PlacementGroup[] = [...this.groups.values()].map((g) => ({ ...g }));
    return planPlacement({
      nowMs,
      nodes: [...this.nodes.values()],
      groups,
      moves: [...this.moves.values()],
      factors: this.factors,
      settings: this.settings,
    });
  }

  private run(nowMs: number, rounds: number, autoCatchUp: boolean, refused: boolean): string {
    const lines: string[] = [];
    for (let round = 1; round <= rounds; round++) {
      const { steps, groups } = this.plan(nowMs);
      if (steps.length === 0) {
        lines.push(...groups.filter((g) => g.state !== 'ok').map(describeStatus));
        break;
      }
      lines.push(`round ${round}:`, ...steps.map((step) => `  ${describeStep(step)}`));
      for (const step of steps) this.apply(step, autoCatchUp, refused);
    }
    lines.push(this.layout());
    return lines.join('\n');
  }

  private apply(step: PlacementStep, autoCatchUp: boolean, refused: boolean): void {
    const group = step.kind === 'start_move' ? step.move.group : step.group;
    const move = this.moves.get(group);
    const changes = step.kind !== 'start_move' && step.kind !== 'finish_move' && step.kind !== 'cancel_move';
    if (changes && refused) return;
    if (changes && move !== undefined) this.moves.set(group, { ...move, progressMs: this.lastNowMs });
    switch (step.kind) {
      case 'start_move':
        this.moves.set(step.move.group, step.move);
        return;
      case 'finish_move':
      case 'cancel_move':
        this.moves.delete(step.group);
        return;
      case 'add_learner': {
        const group = this.group(step.group);
        group.learners.push(step.node);
        if (autoCatchUp) group.caughtUp.push(step.node);
        return;
      }
      case 'promote':
      case 'replace': {
        const group = this.group(step.group);
        const add = step.kind === 'promote' ? step.node : step.add;
        group.learners = group.learners.filter((node) => node !== add);
        group.voters = [...group.voters.filter((node) => step.kind !== 'replace' || node !== step.remove), add];
        return;
      }
      case 'remove': {
        const group = this.group(step.group);
        group.voters = group.voters.filter((node) => node !== step.node);
        group.learners = group.learners.filter((node) => node !== step.node);
        return;
      }
      case 'transfer':
        this.group(step.group).leader = step.to;
        return;
      case 'refound': {
        // The meta model gives the shard a new group on these nodes; here it keeps its id.
        const group = this.group(step.group);
        Object.assign(group, { voters: [...step.voters], learners: [], caughtUp: [], leader: step.voters[0] });
        this.moves.delete(step.group);
        return;
      }
    }
  }

  private layout(): string {
    const lines: string[] = [];
    const replicas = new Map<NodeId, number>();
    const primaries = new Map<NodeId, number>();
    for (const group of [...this.groups.values()].sort((a, b) => a.id - b.id)) {
      const learners = group.learners.length === 0 ? '' : ` learners=(${group.learners.join(',')})`;
      const move = this.moves.get(group.id);
      const moving = move === undefined ? '' : ` moving[${describeMove(move)}]`;
      lines.push(`g${group.id}: voters=(${group.voters.join(',')})${learners} leader=${group.leader}${moving}`);
      for (const node of [...group.voters, ...group.learners]) replicas.set(node, (replicas.get(node) ?? 0) + 1);
      primaries.set(group.leader, (primaries.get(group.leader) ?? 0) + 1);
    }
    const nodes = [...this.nodes.keys()].sort((a, b) => a - b);
    lines.push(
      `per node: ${nodes.map((node) => `n${node}=${replicas.get(node) ?? 0}/${primaries.get(node) ?? 0}`).join(' ')} (replicas/primaries)`,
    );
    return lines.join('\n');
  }
}

function describeMove(move: PlacementMove): string {
  const parts = [
    ...(move.add === undefined ? [] : [`+${move.add}`]),
    ...(move.remove === undefined ? [] : [`-${move.remove}`]),
  ];
  return `${parts.join(' ')}: ${move.reason}`;
}

export function describeStep(step: PlacementStep): string {
  switch (step.kind) {
    case 'start_move':
      return `g${step.move.group} start ${describeMove(step.move)}`;
    case 'add_learner':
      return `g${step.group} add learner ${step.node}`;
    case 'promote':
      return `g${step.group} promote ${step.node}`;
    case 'replace':
      return `g${step.group} replace ${step.remove} by ${step.add}`;
    case 'remove':
      return `g${step.group} remove ${step.node}`;
    case 'transfer':
      return `g${step.group} transfer leadership to ${step.to} (${step.reason})`;
    case 'finish_move':
      return `g${step.group} finish move`;
    case 'cancel_move':
      return `g${step.group} cancel move: ${step.reason}`;
    case 'refound':
      return `g${step.group} found again on (${step.voters.join(',')}): ${step.reason}`;
  }
}

function describeStatus(status: GroupPlacementStatus): string {
  return `g${status.group} ${status.state} (${status.voters}/${status.desired} voters): ${status.detail}`;
}
